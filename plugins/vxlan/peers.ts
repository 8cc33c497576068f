import { digest } from '../../lib/digest.ts';
import { isUnicastMac, parseMac } from '../../lib/ip/mac.ts';
import { canonicalIp, formatCidr, formatIp, network, parseIp, type Cidr } from '../../lib/net/ip.ts';

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

const span = (c: Cidr): [number, number] => [Number(c.ip.value), Number(c.ip.value) + 2 ** (32 - c.prefix) - 1];

/** Disjoint IPv4 ranges kept sorted: the overlap check is a binary search, not a scan of every peer. */
class IntervalSet<T> {
  private readonly items: { start: number; end: number; value: T }[] = [];

  /** The stored range overlapping [start, end], if any. */
  overlapping([start, end]: [number, number]): T | undefined {
    const i = this.lowerBound(start);
    const before = this.items[i - 1];
    if (before && before.end >= start) return before.value;
    const at = this.items[i];
    return at && at.start <= end ? at.value : undefined;
  }

  insert([start, end]: [number, number], value: T): void {
    this.items.splice(this.lowerBound(start), 0, { start, end, value });
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

/**
 * Validates peer entries against the cluster and this node. Bad entries are rejected one by one
 * with a reason, never the whole set: a typo in one node's entry must not take the others' routes.
 * First come wins on a conflict (file order; etcd create order). Runs on every reconcile over every
 * peer, so IPv4 is checked as numbers from one regex match (see V4_CIDR), not through bigints.
 */
export function validatePeers(inputs: readonly PeerInput[], self: Self, network: Cidr, vni: number): { peers: Peer[]; rejected: Rejected[] } {
  const peers: Peer[] = [];
  const accepted = new IntervalSet<{ subnet: string; origin: string }>();
  const rejected: Rejected[] = [];
  const byIp = new Map<string, string>();
  const byMac = new Map<string, string>();
  const selfFamily = parseIp(self.ip)?.family;
  const selfSubnet = formatCidr(self.subnet);
  const [selfStart, selfEnd] = span(self.subnet);
  const [netStart, netEnd] = span(network);
  const netText = formatCidr(network);
  for (const { origin, entry } of inputs) {
    const reject = (reason: string) => void rejected.push({ origin, reason });
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      reject('not an object with subnet and ip');
      continue;
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.subnet !== 'string' || typeof e.ip !== 'string') {
      reject('needs "subnet" and "ip" strings');
      continue;
    }
    const cidr = V4_CIDR.exec(e.subnet);
    const prefix = cidr ? Number(cidr[5]) : 0;
    const start = cidr ? v4Value(cidr) : 0;
    const end = start + 2 ** (32 - prefix) - 1;
    if (!cidr || start % 2 ** (32 - prefix) !== 0) {
      reject(`subnet ${JSON.stringify(e.subnet)} is not an IPv4 CIDR without host bits`);
      continue;
    }
    const subnet = e.subnet; // canonical: V4_CIDR admits no other spelling
    const v4 = V4.exec(e.ip);
    const ip = v4 ? e.ip : canonicalIp(e.ip);
    if (!ip) {
      reject(`ip ${JSON.stringify(e.ip)} is not an IP address`);
      continue;
    }
    if (ip === self.ip) {
      if (subnet !== selfSubnet) reject(`claims our underlay address ${ip} with subnet ${subnet}, ours is ${selfSubnet}`);
      continue; // ourselves
    }
    if ((v4 ? 4 : 6) !== selfFamily) {
      reject(`ip ${ip} is not of our underlay's family (IPv${selfFamily})`);
      continue;
    }
    if (start < netStart || end > netEnd || prefix === network.prefix) {
      reject(`subnet ${subnet} is not a subnet of the cluster network ${netText}`);
      continue;
    }
    if (start <= selfEnd && selfStart <= end) {
      reject(`subnet ${subnet} claims our subnet ${selfSubnet}`);
      continue;
    }
    const clash = accepted.overlapping([start, end]);
    if (clash) {
      reject(`subnet ${subnet} overlaps ${clash.subnet} of ${clash.origin}`);
      continue;
    }
    if (byIp.has(ip)) {
      reject(`ip ${ip} already belongs to ${byIp.get(ip)}`);
      continue;
    }
    const mac = e.mac === undefined ? (v4 ? v4Mac(vni, v4) : vtepMac(vni, ip)) : typeof e.mac === 'string' ? parseMac(e.mac) : undefined;
    if (!mac || (e.mac !== undefined && (!isUnicastMac(mac) || mac === '00:00:00:00:00:00'))) {
      reject(`mac ${JSON.stringify(e.mac)} is not a unicast MAC address`);
      continue;
    }
    if (byMac.has(mac)) {
      reject(`mac ${mac} already belongs to ${byMac.get(mac)}`);
      continue;
    }
    accepted.insert([start, end], { subnet, origin });
    byIp.set(ip, origin);
    byMac.set(mac, origin);
    peers.push({ subnet, ip, mac, vtep: subnet.slice(0, subnet.indexOf('/')) });
  }
  return { peers, rejected };
}
