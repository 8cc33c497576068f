import { isIPv4, isIPv6 } from 'node:net';

/** IP arithmetic the overlay needs: addresses as bigints, CIDRs canonicalised. */

export interface Cidr {
  family: 4 | 6;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);

export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(text)) {
    const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
    return { family: 4, value: BigInt(((a << 24) >>> 0) + (b << 16) + (c << 8) + d) };
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const embedded = (part: string) => {
    const groups = part ? part.split(':') : [];
    const last = groups[groups.length - 1];
    if (last && last.includes('.')) {
      const v4 = parseIp(last)!.value;
      groups.splice(groups.length - 1, 1, ((v4 >> 16n) & 0xffffn).toString(16), (v4 & 0xffffn).toString(16));
    }
    return groups;
  };
  const h = embedded(head ?? '');
  const t = tail === undefined ? [] : embedded(tail);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    const v = Number(value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // the longest run of zero groups (length >= 2) becomes '::'
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** Canonical IP text, or undefined if `text` is not an IP address. */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text; // dotted quads have one spelling (no leading zeros in isIPv4)
  const ip = parseIp(text);
  return ip && formatIp(ip.family, ip.value);
}

/** Parses `a.b.c.d/n`; `strict` refuses host bits (a subnet must be written as its network). */
export function parseCidr(text: string, strict = true): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  const base = ip.value & mask(ip.family, prefix);
  if (strict && base !== ip.value) return undefined;
  return { family: ip.family, base, prefix };
}

function mask(family: 4 | 6, prefix: number): bigint {
  const width = BigInt(bits(family));
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
}

export const formatCidr = (c: Cidr) => `${formatIp(c.family, c.base)}/${c.prefix}`;

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && (inner.base & mask(outer.family, outer.prefix)) === outer.base;
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** The n-th subnet of length `len` inside `network`, or undefined past the end. */
export function nthSubnet(network: Cidr, len: number, n: number): Cidr | undefined {
  const count = 1n << BigInt(len - network.prefix);
  if (BigInt(n) >= count) return undefined;
  return { family: network.family, base: network.base + (BigInt(n) << BigInt(bits(network.family) - len)), prefix: len };
}

export const subnetCount = (network: Cidr, len: number) => 2 ** Math.min(len - network.prefix, 30);

/** An address inside a subnet by offset from its base (offset 0 = the network address). */
export const addressIn = (c: Cidr, offset: number) => formatIp(c.family, c.base + BigInt(offset));
