import { digest } from '../../lib/digest.ts';
import { isUnicastMac, parseMac } from '../../lib/ip/mac.ts';
import { canonicalIp, formatCidr, formatIp, network, parseIp, type Cidr, type Family } from '../../lib/net/ip.ts';

/** A remote node as the kernel needs it: its pod subnet, underlay address and VTEP identity. */
export interface Peer {
  subnet: string;
  /** Underlay address: the FDB entry's `dst`. */
  ip: string;
  /** VTEP MAC: the neighbour's lladdr and the FDB key. */
  mac: string;
  /** VTEP IP: the subnet's network address (flannel's layout), the routes' onlink gateway. */
  vtep: string;
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

/** This node as the peers see it. */
export interface Self {
  subnet: Cidr;
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
class IntervalSet<T> {
  private readonly items: { start: number; end: number; value: T }[] = [];

  /** The stored range overlapping [start, end], if any. */
  overlapping(start: number, end: number): T | undefined {
    const last = this.items[this.items.length - 1];
    if (!last || last.end < start) return undefined;
    const i = this.lowerBound(start);
    const before = this.items[i - 1];
    if (before && before.end >= start) return before.value;
    const at = this.items[i];
    return at && at.start <= end ? at.value : undefined;
  }

  /** Adds a range that overlaps none (`overlapping` said so). */
  insert(start: number, end: number, value: T): void {
    const last = this.items[this.items.length - 1];
    if (!last || last.start < start) this.items.push({ start, end, value });
    else this.items.splice(this.lowerBound(start), 0, { start, end, value });
  }

  /** The first index whose range starts at or after `start`. */
  private lowerBound(start: number): number {
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

/** What the entries accepted so far hold: a later entry may not take their subnet, address or MAC. */
interface Taken {
  subnets: IntervalSet<{ subnet: string; origin: string }>;
  ips: Map<string, string>;
  macs: Map<string, string>;
}

/** The cluster and this node, with the numbers the checks compare, computed once per validation. */
interface Bounds {
  self: Self;
  selfFamily: Family | undefined;
  selfSubnet: string;
  selfStart: number;
  selfEnd: number;
  netStart: number;
  netEnd: number;
  netPrefix: number;
  netText: string;
  vni: number;
}

/** One entry checked against the cluster, this node and the entries before it: a peer, a reason, or undefined for ourselves. */
function checkPeer(entry: unknown, origin: string, b: Bounds, taken: Taken): Peer | string | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return 'not an object with subnet and ip';
  const e = entry as Record<string, unknown>;
  if (typeof e.subnet !== 'string' || typeof e.ip !== 'string') return 'needs "subnet" and "ip" strings';
  const cidr = V4_CIDR.exec(e.subnet);
  const prefix = cidr ? Number(cidr[5]) : 0;
  const size = 2 ** (32 - prefix);
  const start = cidr ? v4Value(cidr) : 0;
  const end = start + size - 1;
  if (!cidr || start % size !== 0) return `subnet ${JSON.stringify(e.subnet)} is not an IPv4 CIDR without host bits`;
  const subnet = e.subnet; // canonical: V4_CIDR admits no other spelling
  const v4 = V4.exec(e.ip);
  const ip = v4 ? e.ip : canonicalIp(e.ip);
  if (!ip) return `ip ${JSON.stringify(e.ip)} is not an IP address`;
  if (ip === b.self.ip) return subnet !== b.selfSubnet ? `claims our underlay address ${ip} with subnet ${subnet}, ours is ${b.selfSubnet}` : undefined;
  if ((v4 ? 4 : 6) !== b.selfFamily) return `ip ${ip} is not of our underlay's family (IPv${b.selfFamily})`;
  if (start < b.netStart || end > b.netEnd || prefix === b.netPrefix) return `subnet ${subnet} is not a subnet of the cluster network ${b.netText}`;
  if (start <= b.selfEnd && b.selfStart <= end) return `subnet ${subnet} claims our subnet ${b.selfSubnet}`;
  const clash = taken.subnets.overlapping(start, end);
  if (clash) return `subnet ${subnet} overlaps ${clash.subnet} of ${clash.origin}`;
  if (taken.ips.has(ip)) return `ip ${ip} already belongs to ${taken.ips.get(ip)}`;
  const mac = e.mac === undefined ? (v4 ? v4Mac(b.vni, v4) : vtepMac(b.vni, ip)) : typeof e.mac === 'string' ? parseMac(e.mac) : undefined;
  if (!mac || (e.mac !== undefined && (!isUnicastMac(mac) || mac === '00:00:00:00:00:00'))) return `mac ${JSON.stringify(e.mac)} is not a unicast MAC address`;
  if (taken.macs.has(mac)) return `mac ${mac} already belongs to ${taken.macs.get(mac)}`;
  taken.subnets.insert(start, end, { subnet, origin });
  taken.ips.set(ip, origin);
  taken.macs.set(mac, origin);
  return { subnet, ip, mac, vtep: subnet.slice(0, subnet.indexOf('/')) };
}

/**
 * Validates peer entries against the cluster and this node. Bad entries are rejected one by one
 * with a reason, never the whole set: a typo in one node's entry must not take the others' routes.
 * First come wins on a conflict (file order; etcd create order). Runs on every reconcile over every
 * peer, so IPv4 is checked as numbers from one regex match (see V4_CIDR), not through bigints.
 */
export function validatePeers(inputs: readonly PeerInput[], self: Self, network: Cidr, vni: number): { peers: Peer[]; rejected: Rejected[] } {
  const selfStart = Number(self.subnet.ip.value);
  const netStart = Number(network.ip.value);
  const bounds: Bounds = {
    self,
    selfFamily: parseIp(self.ip)?.family,
    selfSubnet: formatCidr(self.subnet),
    selfStart,
    selfEnd: selfStart + 2 ** (32 - self.subnet.prefix) - 1,
    netStart,
    netEnd: netStart + 2 ** (32 - network.prefix) - 1,
    netPrefix: network.prefix,
    netText: formatCidr(network),
    vni,
  };
  const taken: Taken = { subnets: new IntervalSet(), ips: new Map(), macs: new Map() };
  const peers: Peer[] = [];
  const rejected: Rejected[] = [];
  for (const { origin, entry } of inputs) {
    const checked = checkPeer(entry, origin, bounds, taken);
    if (typeof checked === 'string') rejected.push({ origin, reason: checked });
    else if (checked) peers.push(checked);
  }
  return { peers, rejected };
}
