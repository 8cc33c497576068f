import { digest } from '../../lib/digest.ts';
import { isUnicastMac, parseMac } from '../../lib/ip/mac.ts';
import { contains, formatCidr, formatIp, lastAddress, network, parseCidr, parseIp, parseSubnet, type Cidr, type Family, type Ip } from '../../lib/net/ip.ts';

/**
 * A remote node as the kernel needs it: its pod subnets (IPv4, IPv6 or both, as far as this node's
 * cluster networks go), underlay address and VTEP identity. Both families ride the one device, so
 * one FDB entry serves both (see the README: one device, not two).
 */
export interface Peer {
  subnet?: string;
  /** VTEP IP: the subnet's network address (flannel's layout), the routes' onlink gateway. */
  vtep?: string;
  subnet6?: string;
  /** The IPv6 subnet's network address (flannel's v6 layout): the IPv6 routes' onlink gateway. */
  vtep6?: string;
  /** Underlay address, of our underlay's family: the FDB entry's `dst`. */
  ip: string;
  /** VTEP MAC: the neighbours' lladdr and the FDB key. */
  mac: string;
}

/** What identifies a peer in a record: its first subnet (validated peers share none). */
export const peerKey = (p: Peer): string => p.subnet ?? p.subnet6 ?? p.ip;

/** The cluster networks of this node's config (at least one). */
export interface Cluster {
  network: Cidr | undefined;
  network6: Cidr | undefined;
}

/** Where an entry came from, for log lines: `peers[3]`, `/etc/tscni/vxlan-peers.json#2`, an etcd key. */
export interface PeerInput {
  origin: string;
  entry: unknown;
}

export interface Rejected {
  origin: string;
  reason: string;
}

/** This node as the peers see it: its subnets (one per configured family) and underlay address. */
export interface Self {
  subnet: Cidr | undefined;
  subnet6: Cidr | undefined;
  ip: string;
}

const HEX2 = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/**
 * IPv4 in canonical text only (octets 0-255 without leading zeros, prefix 0-32), as lib/net
 * accepts it: a peer list is checked with one native regex per field instead of bigint parsing,
 * and the text is then already the canonical form. Anything else is rejected, or is IPv6.
 */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const V4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const V4_CIDR = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}/(3[0-2]|[12]?[0-9])$`);

const v4Value = (m: RegExpExecArray) => ((Number(m[1]) * 256 + Number(m[2])) * 256 + Number(m[3])) * 256 + Number(m[4]);

/** `0a:<vni>:<a>:<b>:<c>:<d>` from an IPv4 address's octets. */
const v4Mac = (vni: number, m: RegExpExecArray) => `0a:${HEX2[vni & 0xff]}:${HEX2[Number(m[1])]}:${HEX2[Number(m[2])]}:${HEX2[Number(m[3])]}:${HEX2[Number(m[4])]}`;

/**
 * A stable VTEP MAC from VNI and underlay IP: locally administered, unicast. Every node computes
 * the same MAC for a peer, so a peers file needs no MACs and a re-created device keeps its identity.
 * An IPv4 underlay address fits in the MAC (`0a:<vni>:<a>:<b>:<c>:<d>`: unique, and readable in
 * `bridge fdb`); an IPv6 one is hashed.
 */
export function vtepMac(vni: number, ip: string): string {
  const v4 = V4.exec(ip);
  if (v4) return v4Mac(vni, v4);
  const bytes = [...digest('sha256', `tscni-vxlan/${vni}/${ip}`).subarray(0, 6)];
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return bytes.map((b) => HEX2[b]).join(':');
}

export const vtepIp = (subnet: Cidr) => formatIp(network(subnet));

/**
 * Disjoint IPv4 ranges kept sorted: the overlap check is a binary search, not a scan of every peer.
 * Ranges usually arrive in order (a generated file, subnets leased one after another): one past
 * the last is checked and appended without a search.
 */
class IntervalSet<K extends number | bigint, T> {
  private readonly items: { start: K; end: K; value: T }[] = [];

  /** The stored range overlapping [start, end], if any. */
  overlapping(start: K, end: K): T | undefined {
    const last = this.items[this.items.length - 1];
    if (!last || last.end < start) return undefined;
    const i = this.lowerBound(start);
    const before = this.items[i - 1];
    if (before && before.end >= start) return before.value;
    const at = this.items[i];
    return at && at.start <= end ? at.value : undefined;
  }

  /** Adds a range that overlaps none (`overlapping` said so). */
  insert(start: K, end: K, value: T): void {
    const last = this.items[this.items.length - 1];
    if (!last || last.start < start) this.items.push({ start, end, value });
    else this.items.splice(this.lowerBound(start), 0, { start, end, value });
  }

  /** The first index whose range starts at or after `start`. */
  private lowerBound(start: K): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.start < start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** What the entries accepted so far hold: a later entry may not take their subnets, address or MAC. */
interface Taken {
  subnets: IntervalSet<number, { subnet: string; origin: string }>;
  subnets6: IntervalSet<bigint, { subnet: string; origin: string }>;
  ips: Map<string, string>;
  macs: Map<string, string>;
}

/** The cluster and this node, with the numbers the checks compare, computed once per validation. */
interface Bounds {
  self: Self;
  selfFamily: Family | undefined;
  selfSubnets: string;
  /** IPv4 (numbers, see V4_CIDR), when the config has an IPv4 cluster network. */
  v4: { selfStart: number; selfEnd: number; selfText: string; netStart: number; netEnd: number; netPrefix: number; netText: string } | undefined;
  /** IPv6 (bigints), when the config has an IPv6 cluster network. */
  v6: { self: Cidr | undefined; network: Cidr; netText: string } | undefined;
  vni: number;
}

type Checked<T> = T | string;

/** The entry's IPv4 subnet and VTEP (checked as numbers from one regex match), or a reason. */
function checkSubnet4(text: unknown, b: NonNullable<Bounds['v4']>, taken: Taken): Checked<{ subnet: string; start: number; end: number }> {
  const cidr = typeof text === 'string' ? V4_CIDR.exec(text) : null;
  const prefix = cidr ? Number(cidr[5]) : 0;
  const size = 2 ** (32 - prefix);
  const start = cidr ? v4Value(cidr) : 0;
  const end = start + size - 1;
  if (!cidr || start % size !== 0) return `subnet ${JSON.stringify(text)} is not an IPv4 CIDR without host bits`;
  const subnet = text as string; // canonical: V4_CIDR admits no other spelling
  if (start < b.netStart || end > b.netEnd || prefix === b.netPrefix) return `subnet ${subnet} is not a subnet of the cluster network ${b.netText}`;
  if (start <= b.selfEnd && b.selfStart <= end) return `subnet ${subnet} claims our subnet ${b.selfText}`;
  const clash = taken.subnets.overlapping(start, end);
  if (clash) return `subnet ${subnet} overlaps ${clash.subnet} of ${clash.origin}`;
  return { subnet, start, end };
}

/** The entry's IPv6 subnet in canonical text, or a reason. */
function checkSubnet6(text: unknown, b: NonNullable<Bounds['v6']>, taken: Taken): Checked<{ subnet: string; cidr: Cidr }> {
  const cidr = typeof text === 'string' ? parseSubnet(text) : undefined;
  if (!cidr || cidr.ip.family !== 6) return `subnet6 ${JSON.stringify(text)} is not an IPv6 CIDR without host bits`;
  const subnet = formatCidr(cidr);
  if (cidr.prefix <= b.network.prefix || !contains(b.network, cidr.ip)) return `subnet6 ${subnet} is not a subnet of the cluster network ${b.netText}`;
  if (b.self && (contains(b.self, cidr.ip) || contains(cidr, b.self.ip))) return `subnet6 ${subnet} claims our subnet6 ${formatCidr(b.self)}`;
  const clash = taken.subnets6.overlapping(cidr.ip.value, lastAddress(cidr).value);
  if (clash) return `subnet6 ${subnet} overlaps ${clash.subnet} of ${clash.origin}`;
  return { subnet, cidr };
}

const LINK_LOCAL6 = parseCidr('fe80::/10')!;
const MULTICAST6 = parseCidr('ff00::/8')!;

/** `unusableVtep` for IPv4, as a number (see V4): 0.0.0.0, 255.255.255.255, 127/8, 169.254/16, 224/4. */
function unusableVtep4(value: number): string | undefined {
  const first = Math.floor(value / 2 ** 24);
  if (value === 0 || value === 0xffffffff || first === 127) return 'not a unicast address';
  if (Math.floor(value / 2 ** 16) === 0xa9fe) return 'link-local';
  if (first >= 224 && first < 240) return 'multicast';
  return undefined;
}

/** Why `ip` cannot be a VTEP's underlay address (a unicast address another node can send to), if it cannot. */
export function unusableVtep(ip: Ip): string | undefined {
  if (ip.family === 4) return unusableVtep4(Number(ip.value));
  if (ip.value === 0n || ip.value === 1n) return 'not a unicast address';
  if (contains(LINK_LOCAL6, ip)) return 'link-local';
  if (contains(MULTICAST6, ip)) return 'multicast';
  return undefined;
}

/**
 * The entry's underlay address of our underlay's family: `ip` (IPv4, or IPv6 as older entries
 * have it) or `ip6`, with the MAC that goes with it (`mac6` is an etcd lease's BackendV6Data MAC).
 */
function underlayOf(e: Record<string, unknown>, b: Bounds): Checked<{ ip: string; v4: RegExpExecArray | null; mac: unknown }> {
  if (e.ip !== undefined && typeof e.ip !== 'string') return `ip ${JSON.stringify(e.ip)} is not a string`;
  if (e.ip6 !== undefined && typeof e.ip6 !== 'string') return `ip6 ${JSON.stringify(e.ip6)} is not a string`;
  if (e.ip === undefined && e.ip6 === undefined) return 'needs "ip" or "ip6"';
  const given: { field: string; text: string; family: Family; v4: RegExpExecArray | null }[] = [];
  for (const field of ['ip', 'ip6'] as const) {
    const text = e[field];
    if (typeof text !== 'string') continue;
    // canonical IPv4 (the usual underlay) is checked as a number from the match, as subnets are
    const v4 = V4.exec(text);
    const ip = v4 ? undefined : parseIp(text);
    const family = v4 ? 4 : ip?.family;
    if (!family || (field === 'ip6' && family !== 6)) return `${field} ${JSON.stringify(text)} is not an ${field === 'ip6' ? 'IPv6' : 'IP'} address`;
    const bad = v4 ? unusableVtep4(v4Value(v4)) : unusableVtep(ip!);
    if (bad) return `${field} ${text} is ${bad}: not an underlay address`;
    given.push({ field, text: v4 ? text : formatIp(ip!), family, v4 });
  }
  const ours = given.filter((g) => g.family === b.selfFamily);
  const pick = ours.find((g) => g.field === 'ip6') ?? ours[0];
  if (!pick) return `${given.map((g) => `${g.field} ${g.text}`).join(' and ')} ${given.length > 1 ? 'are' : 'is'} not of our underlay's family (IPv${b.selfFamily})`;
  return { ip: pick.text, v4: pick.v4, mac: pick.field === 'ip6' && e.mac6 !== undefined ? e.mac6 : e.mac };
}

/** One entry checked against the cluster, this node and the entries before it: a peer, a reason, or undefined for ourselves. */
function checkPeer(entry: unknown, origin: string, b: Bounds, taken: Taken): Peer | string | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return 'not an object with subnet and ip';
  const e = entry as Record<string, unknown>;
  const has4 = e.subnet !== undefined && b.v4 !== undefined;
  const has6 = e.subnet6 !== undefined && b.v6 !== undefined;
  if (!has4 && !has6) return b.v4 && b.v6 ? 'needs "subnet" or "subnet6"' : b.v4 ? 'needs a "subnet" string' : 'needs a "subnet6" string';
  const under = underlayOf(e, b);
  if (typeof under === 'string') return under;
  const ip = under.ip;
  if (ip === b.self.ip) {
    const same = (!has4 || e.subnet === (b.self.subnet && formatCidr(b.self.subnet))) && (!has6 || (typeof e.subnet6 === 'string' && b.self.subnet6 !== undefined && canonicalSubnet(e.subnet6) === formatCidr(b.self.subnet6)));
    return same ? undefined : `claims our underlay address ${ip} with subnet ${[has4 && e.subnet, has6 && e.subnet6].filter(Boolean).join(' ')}, ours is ${b.selfSubnets}`;
  }
  const s6 = has6 ? checkSubnet6(e.subnet6, b.v6!, taken) : undefined;
  if (typeof s6 === 'string') return s6;
  const s4 = has4 ? checkSubnet4(e.subnet, b.v4!, taken) : undefined;
  if (typeof s4 === 'string') return s4;
  if (taken.ips.has(ip)) return `ip ${ip} already belongs to ${taken.ips.get(ip)}`;
  const mac = under.mac === undefined ? (under.v4 ? v4Mac(b.vni, under.v4) : vtepMac(b.vni, ip)) : typeof under.mac === 'string' ? parseMac(under.mac) : undefined;
  if (!mac || (under.mac !== undefined && (!isUnicastMac(mac) || mac === '00:00:00:00:00:00'))) return `mac ${JSON.stringify(under.mac)} is not a unicast MAC address`;
  if (taken.macs.has(mac)) return `mac ${mac} already belongs to ${taken.macs.get(mac)}`;
  if (s4) taken.subnets.insert(s4.start, s4.end, { subnet: s4.subnet, origin });
  if (s6) taken.subnets6.insert(s6.cidr.ip.value, lastAddress(s6.cidr).value, { subnet: s6.subnet, origin });
  taken.ips.set(ip, origin);
  taken.macs.set(mac, origin);
  return {
    ...(s4 ? { subnet: s4.subnet, vtep: s4.subnet.slice(0, s4.subnet.indexOf('/')) } : {}),
    ...(s6 ? { subnet6: s6.subnet, vtep6: formatIp(network(s6.cidr)) } : {}),
    ip,
    mac,
  };
}

const canonicalSubnet = (text: string) => {
  const c = parseSubnet(text);
  return c && formatCidr(c);
};

/**
 * Validates peer entries against the cluster and this node. Bad entries are rejected one by one
 * with a reason, never the whole set: a typo in one node's entry must not take the others' routes.
 * First come wins on a conflict (file order; etcd create order). Runs on every reconcile over every
 * peer, so IPv4 is checked as numbers from one regex match (see V4_CIDR), not through bigints.
 * A family this node has no cluster network for is ignored in an entry (a dual-stack peer seen from
 * an IPv4-only node); an entry with no subnet of ours is rejected.
 */
export function validatePeers(inputs: readonly PeerInput[], self: Self, cluster: Cluster, vni: number): { peers: Peer[]; rejected: Rejected[] } {
  const v4 = cluster.network && self.subnet;
  const bounds: Bounds = {
    self,
    selfFamily: parseIp(self.ip)?.family,
    selfSubnets: [self.subnet, self.subnet6].filter((c): c is Cidr => c !== undefined).map(formatCidr).join(' '),
    v4:
      cluster.network && v4
        ? {
            selfStart: Number(v4.ip.value),
            selfEnd: Number(v4.ip.value) + 2 ** (32 - v4.prefix) - 1,
            selfText: formatCidr(v4),
            netStart: Number(cluster.network.ip.value),
            netEnd: Number(cluster.network.ip.value) + 2 ** (32 - cluster.network.prefix) - 1,
            netPrefix: cluster.network.prefix,
            netText: formatCidr(cluster.network),
          }
        : undefined,
    v6: cluster.network6 ? { self: self.subnet6, network: cluster.network6, netText: formatCidr(cluster.network6) } : undefined,
    vni,
  };
  const taken: Taken = { subnets: new IntervalSet(), subnets6: new IntervalSet(), ips: new Map(), macs: new Map() };
  const peers: Peer[] = [];
  const rejected: Rejected[] = [];
  for (const { origin, entry } of inputs) {
    const checked = checkPeer(entry, origin, bounds, taken);
    if (typeof checked === 'string') rejected.push({ origin, reason: checked });
    else if (checked) peers.push(checked);
  }
  return { peers, rejected };
}
