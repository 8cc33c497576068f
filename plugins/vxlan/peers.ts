import { createHash } from 'node:crypto';
import { canonicalIp, containsCidr, formatCidr, formatIp, network, overlaps, parseIp, parseSubnet, type Cidr } from '../../lib/net/ip.ts';

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

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const hex2 = (b: number) => b.toString(16).padStart(2, '0');

/**
 * A stable VTEP MAC from VNI and underlay IP: locally administered, unicast. Every node computes
 * the same MAC for a peer, so a peers file needs no MACs and a re-created device keeps its identity.
 * An IPv4 underlay address fits in the MAC (`0a:<vni>:<a>:<b>:<c>:<d>`: unique, and readable in
 * `bridge fdb`); an IPv6 one is hashed.
 */
export function vtepMac(vni: number, ip: string): string {
  const v4 = parseIp(ip)?.family === 4 ? ip.split('.').map(Number) : undefined;
  const bytes = v4 ? [0x0a, vni & 0xff, ...v4] : [...createHash('sha256').update(`tscni-vxlan/${vni}/${ip}`).digest().subarray(0, 6)];
  if (!v4) bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return bytes.map(hex2).join(':');
}

export const vtepIp = (subnet: Cidr) => formatIp(network(subnet));

const span = (c: Cidr): [number, number] => [Number(c.ip.value), Number(c.ip.value) + 2 ** (32 - c.prefix) - 1];

/** Disjoint IPv4 ranges kept sorted: the overlap check is a binary search, not a scan of every peer. */
class IntervalSet<T> {
  private readonly items: { start: number; end: number; value: T }[] = [];

  /** The stored range overlapping [start, end], if any. */
  overlapping([start, end]: [number, number]): T | undefined {
    const i = this.lowerBound(start);
    for (const j of [i - 1, i]) {
      const it = this.items[j];
      if (it && it.start <= end && start <= it.end) return it.value;
    }
    return undefined;
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

function isUnicastMac(mac: string): boolean {
  return MAC.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}

/**
 * Validates peer entries against the cluster and this node. Bad entries are rejected one by one
 * with a reason, never the whole set: a typo in one node's entry must not take the others' routes.
 * First come wins on a conflict (file order; etcd create order).
 */
export function validatePeers(inputs: readonly PeerInput[], self: Self, network: Cidr, vni: number): { peers: Peer[]; rejected: Rejected[] } {
  const peers: Peer[] = [];
  const accepted = new IntervalSet<{ subnet: Cidr; origin: string }>();
  const rejected: Rejected[] = [];
  const byIp = new Map<string, string>();
  const byMac = new Map<string, string>();
  const selfFamily = parseIp(self.ip)?.family;
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
    const subnet = parseSubnet(e.subnet);
    if (!subnet || subnet.ip.family !== 4) {
      reject(`subnet ${JSON.stringify(e.subnet)} is not an IPv4 CIDR without host bits`);
      continue;
    }
    const ip = canonicalIp(e.ip);
    if (!ip) {
      reject(`ip ${JSON.stringify(e.ip)} is not an IP address`);
      continue;
    }
    if (ip === self.ip) {
      if (formatCidr(subnet) !== formatCidr(self.subnet)) reject(`claims our underlay address ${ip} with subnet ${formatCidr(subnet)}, ours is ${formatCidr(self.subnet)}`);
      continue; // ourselves
    }
    if (parseIp(ip)!.family !== selfFamily) {
      reject(`ip ${ip} is not of our underlay's family (IPv${selfFamily})`);
      continue;
    }
    if (!containsCidr(network, subnet) || subnet.prefix === network.prefix) {
      reject(`subnet ${formatCidr(subnet)} is not a subnet of the cluster network ${formatCidr(network)}`);
      continue;
    }
    if (overlaps(subnet, self.subnet)) {
      reject(`subnet ${formatCidr(subnet)} claims our subnet ${formatCidr(self.subnet)}`);
      continue;
    }
    const range = span(subnet);
    const clash = accepted.overlapping(range);
    if (clash) {
      reject(`subnet ${formatCidr(subnet)} overlaps ${formatCidr(clash.subnet)} of ${clash.origin}`);
      continue;
    }
    if (byIp.has(ip)) {
      reject(`ip ${ip} already belongs to ${byIp.get(ip)}`);
      continue;
    }
    const mac = e.mac === undefined ? vtepMac(vni, ip) : typeof e.mac === 'string' ? e.mac.toLowerCase() : '';
    if (!isUnicastMac(mac)) {
      reject(`mac ${JSON.stringify(e.mac)} is not a unicast MAC address`);
      continue;
    }
    if (byMac.has(mac)) {
      reject(`mac ${mac} already belongs to ${byMac.get(mac)}`);
      continue;
    }
    accepted.insert(range, { subnet, origin });
    byIp.set(ip, origin);
    byMac.set(mac, origin);
    peers.push({ subnet: formatCidr(subnet), ip, mac, vtep: vtepIp(subnet) });
  }
  return { peers, rejected };
}
