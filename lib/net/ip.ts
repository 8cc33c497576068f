/**
 * IPv4/IPv6 addresses and prefixes as bigints: parsing, CIDR math and the canonical text form Go's
 * net package prints (so file names and results match the reference plugins byte for byte).
 */
export type Family = 4 | 6;

/** An address: its family and its value as an unsigned integer of 32 or 128 bits. */
export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix as written: `ip` keeps any host bits (`10.1.2.5/24`), see `network()` and `hasHostBits()`. */
export interface Cidr {
  readonly ip: Ip;
  readonly prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);
const maxOf = (family: Family): bigint => (1n << BigInt(bitsOf(family))) - 1n;

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!V4_OCTET.test(p)) return undefined; // Go refuses leading zeros (ambiguous octal)
    const n = Number(p);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return BigInt(value);
}

function parseGroups(text: string): bigint[] | undefined {
  if (text === '') return [];
  const groups: bigint[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = parseV4(p);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (HEX_GROUP.test(p)) {
      groups.push(BigInt(parseInt(p, 16)));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // a dotted quad may only end the address
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<bigint>(halves.length === 2 ? missing : 0).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses `10.1.2.3` or `fd00::1` (no zones, no leading zeros in IPv4 octets); undefined if invalid. */
export function parseIp(text: string): Ip | undefined {
  if (text.length > 45) return undefined;
  if (text.includes(':')) {
    const value = parseV6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Canonical text of an address (`fd00:0::1` → `fd00::1`), or undefined if `text` is not one. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip);
}

/** Parses `10.1.2.0/24` or `fd00::/64`; the address keeps its host bits. Undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const bits = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const prefix = Number(bits);
  return prefix > bitsOf(ip.family) ? undefined : { ip, prefix };
}

function formatV4(value: bigint): string {
  const v = Number(value); // 32 bits fit a double exactly; plain arithmetic beats four bigint shifts
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text, as Go prints it: lowercase, the longest run (≥ 2) of zero groups as `::`, first wins. */
function formatV6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Canonical text: `10.1.2.3`, `fd00::1`. */
export function formatIp(ip: Ip): string {
  return ip.family === 4 ? formatV4(ip.value) : formatV6(ip.value);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.ip)}/${cidr.prefix}`;
}

const hostMask = (cidr: Cidr): bigint => (1n << BigInt(bitsOf(cidr.ip.family) - cidr.prefix)) - 1n;

/** The first address of the prefix (host bits cleared). */
export function network(cidr: Cidr): Ip {
  return { family: cidr.ip.family, value: cidr.ip.value & ~hostMask(cidr) };
}

/** The last address of the prefix (all host bits set): the IPv4 broadcast. */
export function lastAddress(cidr: Cidr): Ip {
  return { family: cidr.ip.family, value: cidr.ip.value | hostMask(cidr) };
}

export function hasHostBits(cidr: Cidr): boolean {
  return (cidr.ip.value & hostMask(cidr)) !== 0n;
}

/** Parses a prefix written as its network (`10.244.1.0/24`, not `10.244.1.1/24`); undefined otherwise. */
export function parseSubnet(text: string): Cidr | undefined {
  const cidr = parseCidr(text);
  return cidr && !hasHostBits(cidr) ? cidr : undefined;
}

export function contains(cidr: Cidr, ip: Ip): boolean {
  return ip.family === cidr.ip.family && (ip.value & ~hostMask(cidr)) === network(cidr).value;
}

/** Whether every address of `inner` is in `outer`. */
export const containsCidr = (outer: Cidr, inner: Cidr): boolean => inner.prefix >= outer.prefix && contains(outer, inner.ip);

/** The `n`-th prefix of length `len` inside `cidr` (0 = the first), undefined past the end. */
export function nthSubnet(cidr: Cidr, len: number, n: number): Cidr | undefined {
  if (len < cidr.prefix || len > bitsOf(cidr.ip.family) || n < 0 || BigInt(n) >= 1n << BigInt(len - cidr.prefix)) return undefined;
  const value = network(cidr).value + (BigInt(n) << BigInt(bitsOf(cidr.ip.family) - len));
  return { ip: { family: cidr.ip.family, value }, prefix: len };
}

/** Whether two prefixes share any address (never across families). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.ip.family === b.ip.family && (contains(a, network(b)) || contains(b, network(a)));
}

/** The address `n` after `ip` (negative: before); undefined when it leaves the family's space. */
export function addIp(ip: Ip, n: bigint): Ip | undefined {
  const value = ip.value + n;
  return value < 0n || value > maxOf(ip.family) ? undefined : { family: ip.family, value };
}

export const nextIp = (ip: Ip): Ip | undefined => addIp(ip, 1n);
export const prevIp = (ip: Ip): Ip | undefined => addIp(ip, -1n);

export const ipEqual = (a: Ip, b: Ip): boolean => a.family === b.family && a.value === b.value;

/** Orders by family, then value: <0, 0, >0. */
export function compareIp(a: Ip, b: Ip): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The number of addresses in the prefix. */
export const size = (cidr: Cidr): bigint => hostMask(cidr) + 1n;
