import * as z from 'zod/mini';
import { parseConf } from '../../lib/cni/conf.ts';
import { configPath } from '../../lib/cni/config-path.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { nullishString, optString, string } from '../../lib/cni/schemas.ts';
import type { Route } from '../../lib/cni/result.ts';
import { resultShape } from '../../lib/cni/result-shape.ts';
import { compareIp, contains, formatCidr, formatIp, hasHostBits, lastAddress, network, nextIp, parseCidr, parseIp, prevIp, bitsOf, type Cidr, type Family, type Ip } from '../../lib/net/ip.ts';
import { DEFAULT_DATA_DIR, isStoreName } from '../../lib/store/reservations.ts';

/** One range of a set: inclusive bounds inside `subnet`; `gateway` is never handed out. */
export interface Range {
  subnet: Cidr;
  start: Ip;
  end: Ip;
  gateway: Ip;
}
/** One address is allocated from each set; a v4 set and a v6 set make a dual-stack attachment. */
export type RangeSet = Range[];

export interface HostLocalConf {
  network: string;
  cniVersion: string;
  /** `dataDir/network`: where the reservations live. */
  storeDir: string;
  sets: RangeSet[];
  routes: Route[];
  resolvConf: string | undefined;
  /** Requested addresses, in order: CNI_ARGS IP=, then args.cni.ips, then runtimeConfig.ips. */
  requested: Ip[];
}

const RawRange = lazy(() =>
  z.looseObject({
    subnet: string(),
    rangeStart: nullishString(),
    rangeEnd: nullishString(),
    gateway: nullishString(),
  }),
);
type RawRange = z.infer<ReturnType<typeof RawRange>>;
const RawRangeSets = lazy(() => z.optional(z.nullable(z.array(z.array(RawRange())))));
const RawRoute = lazy(() => z.looseObject({ dst: string(), gw: nullishString() }));
const IpList = lazy(() => z.optional(z.nullable(z.array(string()))));

/** The config as the reference reads it (Go's JSON: keys match case-insensitively, unknown keys kept). */
export const HostLocalNet = lazy(() =>
  z.looseObject({
    cniVersion: optString(),
    name: string(),
    ipam: z.optional(z.nullable(z.looseObject({
      type: optString(),
      subnet: nullishString(),
      rangeStart: nullishString(),
      rangeEnd: nullishString(),
      gateway: nullishString(),
      ranges: RawRangeSets(),
      routes: z.optional(z.nullable(z.array(RawRoute()))),
      dataDir: nullishString(),
      resolvConf: nullishString(),
    }))),
    runtimeConfig: z.optional(z.nullable(z.looseObject({ ipRanges: RawRangeSets(), ips: IpList() }))),
    args: z.optional(z.nullable(z.looseObject({ cni: z.optional(z.nullable(z.looseObject({ ips: IpList() }))) }))),
  }),
);

const bad = (msg: string, details?: string) => new CniError(ErrorCode.invalidConfig, msg, details);

function ipField(text: string, what: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw bad(`invalid IP address: ${text.slice(0, 64)}`, what);
  return ip;
}

/** Go's net.IP decodes "" as absent. */
const given = (text: string | null | undefined): string | undefined => (text ? text : undefined);

export const rangeContains = (r: Range, ip: Ip): boolean => contains(r.subnet, ip) && compareIp(ip, r.start) >= 0 && compareIp(ip, r.end) <= 0;
export const setContains = (set: RangeSet, ip: Ip): boolean => set.some((r) => rangeContains(r, ip));
const rangesOverlap = (a: Range, b: Range) => a.start.family === b.start.family && (rangeContains(a, b.start) || rangeContains(a, b.end) || rangeContains(b, a.start) || rangeContains(b, a.end));

/** `10.1.2.1-10.1.2.254`, as the reference names a range. */
export const formatRange = (r: Range): string => `${formatIp(r.start)}-${formatIp(r.end)}`;
/** `10.1.2.0/24` or `10.1.2.0/24,10.1.3.0/24`: how errors name a set. */
export const formatSubnets = (set: RangeSet): string => set.map((r) => formatCidr(r.subnet)).join(',');

/** Fills a range's defaults as the reference does and checks it (code 7 for anything unusable). */
export function parseRange(raw: RawRange): Range {
  const subnet = parseCidr(raw.subnet);
  if (!subnet) throw bad(`invalid CIDR address: ${raw.subnet.slice(0, 64)}`);
  const text = formatCidr(subnet);
  if (subnet.prefix > bitsOf(subnet.ip.family) - 2) throw bad(`network ${text} too small to allocate from`, 'IPv4 needs a prefix of /30 or shorter, IPv6 /126 or shorter');
  if (hasHostBits(subnet)) {
    throw bad(`network ${text} has host bits set: for a subnet mask of length ${subnet.prefix} the network address is ${formatIp(network(subnet))}`);
  }
  const first = nextIp(network(subnet))!;
  // IPv4 never hands out the broadcast address; IPv6 has none, so its last address is usable.
  const last = subnet.ip.family === 4 ? prevIp(lastAddress(subnet))! : lastAddress(subnet);
  const bound = (value: string | undefined, name: string, fallback: Ip): Ip => {
    if (value === undefined) return fallback;
    const ip = ipField(value, name);
    if (!contains(subnet, ip)) throw bad(`${name} ${formatIp(ip)} not in network ${text}`);
    if (compareIp(ip, first) < 0 || compareIp(ip, last) > 0) throw bad(`${name} ${formatIp(ip)} is not a usable address of ${text}`, `usable: ${formatIp(first)}-${formatIp(last)}`);
    return ip;
  };
  const start = bound(given(raw.rangeStart), 'rangeStart', first);
  const end = bound(given(raw.rangeEnd), 'rangeEnd', last);
  if (compareIp(start, end) > 0) throw bad(`rangeStart ${formatIp(start)} is after rangeEnd ${formatIp(end)}`);
  const gw = given(raw.gateway);
  const gateway = gw === undefined ? first : ipField(gw, 'gateway');
  if (gateway.family !== subnet.ip.family) throw bad(`gateway ${formatIp(gateway)} is not in the family of ${text}`);
  return { subnet, start, end, gateway };
}

function parseRangeSet(raw: RawRange[], index: number): RangeSet {
  const where = (err: unknown) => {
    if (err instanceof CniError) return new CniError(err.code, `invalid range set ${index}: ${err.message}`, err.details);
    return err;
  };
  try {
    if (raw.length === 0) throw bad('empty range set');
    const set = raw.map(parseRange);
    if (set.some((r) => r.start.family !== set[0]!.start.family)) throw bad('mixed address families');
    for (let i = 0; i < set.length; i++) {
      for (let j = i + 1; j < set.length; j++) {
        if (rangesOverlap(set[i]!, set[j]!)) throw bad(`subnets ${formatRange(set[i]!)} and ${formatRange(set[j]!)} overlap`);
      }
    }
    return set;
  } catch (err) {
    throw where(err);
  }
}

function parseRoute(raw: { dst: string; gw?: string | null | undefined }): Route {
  const dst = parseCidr(raw.dst);
  if (!dst) throw bad(`invalid CIDR address: ${raw.dst.slice(0, 64)}`, 'in ipam.routes');
  const gw = given(raw.gw);
  return { dst: formatCidr(dst), ...(gw === undefined ? {} : { gw: formatIp(ipField(gw, 'route gw')) }) };
}

/**
 * Reads a host-local config completely, as the reference's LoadIPAMConfig: ranges from
 * runtimeConfig.ipRanges, then the legacy single-range keys, then `ranges`; requested addresses from
 * CNI_ARGS IP=, args.cni.ips and runtimeConfig.ips. Everything is checked before any file is touched.
 */
export function parseHostLocalConf(raw: unknown, envIp: string | undefined): HostLocalConf {
  const n = parseConf(HostLocalNet(), raw);
  const ipam = n.ipam;
  if (!ipam) throw bad("IPAM config missing 'ipam' key");
  if (!isStoreName(n.name)) {
    throw bad(`invalid network name ${JSON.stringify(n.name.slice(0, 64))}`, 'it names the store directory: letters, digits, "_", "." and "-", starting with a letter or digit');
  }
  const cniVersion = n.cniVersion ?? '0.1.0';
  const requested = [
    ...(envIp ? [envIp] : []),
    ...(n.args?.cni?.ips ?? []),
    ...(n.runtimeConfig?.ips ?? []),
  ].map((t) => ipField(t.includes('/') ? t.slice(0, t.indexOf('/')) : t, 'a requested IP'));

  const legacy = given(ipam.subnet) !== undefined ? [[{ subnet: ipam.subnet!, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]] : [];
  const rawSets = [...(n.runtimeConfig?.ipRanges ?? []), ...legacy, ...(ipam.ranges ?? [])];
  if (rawSets.length === 0) throw bad('no IP ranges specified');
  const sets = rawSets.map(parseRangeSet);

  const perFamily = (f: Family) => sets.filter((s) => s[0]!.start.family === f).length;
  if ((perFamily(4) > 1 || perFamily(6) > 1) && resultShape(cniVersion).legacy) {
    throw bad(`CNI version ${cniVersion} does not support more than 1 address per family`);
  }
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      if (sets[i]!.some((a) => sets[j]!.some((b) => rangesOverlap(a, b)))) throw bad(`range set ${i} overlaps with ${j}`);
    }
  }

  const dataDir = configPath('ipam.dataDir', given(ipam.dataDir) ?? DEFAULT_DATA_DIR);
  const resolvConf = ipam.resolvConf ? configPath('ipam.resolvConf', ipam.resolvConf) : undefined;
  return {
    network: n.name,
    cniVersion,
    storeDir: `${dataDir.replace(/\/+$/, '')}/${n.name}`,
    sets,
    routes: (ipam.routes ?? []).map(parseRoute),
    resolvConf,
    requested,
  };
}

/** Which requested address each set gets (the first one it contains), and those no set takes. */
export function assignRequested(sets: RangeSet[], requested: Ip[]): { perSet: (Ip | undefined)[]; leftover: Ip[] } {
  const left = [...requested];
  const perSet = sets.map((set) => {
    const i = left.findIndex((ip) => setContains(set, ip));
    return i < 0 ? undefined : left.splice(i, 1)[0];
  });
  return { perSet, leftover: left };
}

