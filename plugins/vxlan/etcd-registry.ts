import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import { EtcdClient, type KeyValue } from '../../lib/etcd/client.ts';
import type { EtcdConf, NodeSubnets } from './conf.ts';
import { containsCidr, formatCidr, nthSubnet, overlaps, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import type { PeerInput } from './peers.ts';

/**
 * Subnet leases in etcd, in flannel's layout so flannel nodes and ours can share a registry:
 * `<prefix>/subnets/10.244.1.0-24` → `{"PublicIP":…,"BackendType":"vxlan","BackendData":{"VNI":…,"VtepMAC":…}}`;
 * a dual-stack lease joins both subnets with `&` (`10.244.1.0-24&fd00:10:244:1::-64`), an
 * IPv6-only one has `0.0.0.0-0` before it, and an IPv6 VTEP is `PublicIPv6` / `BackendV6Data`
 * (flannel's pkg/subnet/subnet.go, MakeSubnetKey and ParseSubnetKey; pkg/lease/lease.go, LeaseAttrs).
 */

export const subnetsPrefix = (conf: EtcdConf) => `${conf.prefix.replace(/\/+$/, '')}/subnets/`;
const keyPart = (c: Cidr) => formatCidr(c).replace('/', '-');
export const subnetKey = (conf: EtcdConf, subnets: NodeSubnets) => `${subnetsPrefix(conf)}${subnets.v4 ? keyPart(subnets.v4) : '0.0.0.0-0'}${subnets.v6 ? `&${keyPart(subnets.v6)}` : ''}`;

export interface LeaseValue {
  PublicIP: string;
  PublicIPv6?: string;
  BackendType: 'vxlan';
  BackendData?: { VNI: number; VtepMAC: string };
  BackendV6Data?: { VNI: number; VtepMAC: string };
}

/**
 * This node's lease value: its one device's VTEP on the underlay address, as flannel writes a VTEP
 * of that family (an IPv6 underlay: `PublicIP` 0.0.0.0, `PublicIPv6`, `BackendV6Data`).
 */
export function leaseValue(ip: string, vni: number, mac: string): string {
  const vtep = { VNI: vni, VtepMAC: mac };
  const value: LeaseValue = ip.includes(':') ? { PublicIP: '0.0.0.0', PublicIPv6: ip, BackendType: 'vxlan', BackendV6Data: vtep } : { PublicIP: ip, BackendType: 'vxlan', BackendData: vtep };
  return JSON.stringify(value);
}

/** `0.0.0.0-0` (no IPv4 subnet), optionally `&` and an IPv6 one, as flannel's subnetRegex reads keys. */
const KEY_TAIL = /^(\d+\.\d+\.\d+\.\d+-\d+)(?:&([0-9a-fA-F:]+-\d+))?$/;

/** The subnets a key names, or undefined when it is no subnet key. */
export function subnetsOfKey(conf: EtcdConf, key: string): NodeSubnets | undefined {
  const m = KEY_TAIL.exec(key.slice(subnetsPrefix(conf).length));
  if (!m || !key.startsWith(subnetsPrefix(conf))) return undefined;
  const part = (text: string) => parseSubnet(text.replace(/-(\d+)$/, '/$1'));
  const v4 = m[1] === '0.0.0.0-0' ? undefined : part(m[1]!);
  const v6 = m[2] === undefined ? undefined : part(m[2]);
  if ((m[1] !== '0.0.0.0-0' && v4?.ip.family !== 4) || (m[2] !== undefined && v6?.ip.family !== 6) || (!v4 && !v6)) return undefined;
  return { v4, v6 };
}

function parseLease(value: string): Partial<LeaseValue> | undefined {
  try {
    const v = JSON.parse(value) as unknown;
    return v !== null && typeof v === 'object' ? (v as Partial<LeaseValue>) : undefined;
  } catch {
    return undefined;
  }
}

/** The lease's underlay addresses: `PublicIP` (unless flannel's 0.0.0.0 of an IPv6-only node) and `PublicIPv6`. */
function publicIps(v: Partial<LeaseValue> | undefined): string[] {
  return [v?.PublicIP, v?.PublicIPv6].filter((ip): ip is string => typeof ip === 'string' && ip !== '0.0.0.0');
}

/** Why the value is no vxlan lease of `vni` (each VTEP it holds must be of that VNI), if it is not. */
function notOurVxlan(v: Partial<LeaseValue> | undefined, vni: number): string | undefined {
  if (v?.BackendType !== 'vxlan') return `backend ${JSON.stringify(v?.BackendType ?? null)}, not vxlan`;
  const vnis = [v.BackendData, v.BackendV6Data].filter((d) => d !== undefined && d !== null).map((d) => d.VNI);
  if (vnis.length === 0 || vnis.some((n) => n !== vni)) return `VNI ${JSON.stringify(vnis.length ? vnis.join(' ') : null)}, ours is ${vni}`;
  return undefined;
}

/** One registry entry as a peer input (validated later with the rest): both families, both VTEPs. */
export function etcdPeerInput(conf: EtcdConf, kv: KeyValue, vni: number): PeerInput {
  const subnets = subnetsOfKey(conf, kv.key);
  const v = parseLease(kv.value);
  if (!v) return { origin: kv.key, entry: 'unparsable JSON' };
  if (!subnets || notOurVxlan(v, vni)) return { origin: kv.key, entry: `not a vxlan lease for VNI ${vni}` };
  const entry: Record<string, unknown> = {};
  if (subnets.v4) entry.subnet = formatCidr(subnets.v4);
  if (subnets.v6) entry.subnet6 = formatCidr(subnets.v6);
  if (typeof v.PublicIP === 'string' && v.PublicIP !== '0.0.0.0') entry.ip = v.PublicIP;
  if (v.PublicIPv6 !== undefined && v.PublicIPv6 !== null) entry.ip6 = v.PublicIPv6;
  if (v.BackendData?.VtepMAC !== undefined) entry.mac = v.BackendData.VtepMAC;
  if (v.BackendV6Data?.VtepMAC !== undefined) entry.mac6 = v.BackendV6Data.VtepMAC;
  return { origin: kv.key, entry };
}

export const byCreation = (a: KeyValue, b: KeyValue) => a.createRevision - b.createRevision;

/** Turns registry entries into peer inputs, oldest lease first (first come wins a conflict). */
export function etcdPeerInputs(conf: EtcdConf, kvs: readonly KeyValue[], vni: number): PeerInput[] {
  return [...kvs].sort(byCreation).map((kv) => etcdPeerInput(conf, kv, vni));
}

export function etcdClient(conf: EtcdConf): EtcdClient {
  return new EtcdClient({ endpoints: conf.endpoints, trustedCAFile: conf.trustedCAFile, certFile: conf.certFile, keyFile: conf.keyFile });
}

export interface LeaseRequest {
  network: Cidr | undefined;
  subnetLen: number;
  network6: Cidr | undefined;
  subnetLen6: number;
  /** Fixed subnets from the config: leased or refused, never others. */
  fixed: NodeSubnets;
  /** The subnets this node had before (state file): reclaimed when still free or still ours. */
  previous?: NodeSubnets | undefined;
  previousLease?: string | undefined;
  ip: string;
  vni: number;
  mac: string;
}

export interface Lease {
  subnets: NodeSubnets;
  leaseId: string;
  kvs: KeyValue[];
  revision: number;
}

/** A registry entry as leasing sees it. */
interface Held {
  kv: KeyValue;
  /** The key's subnets that are proper subnets of our networks: no other key takes room in them. */
  subnets: NodeSubnets;
  ips: string[];
  /** Why it is no vxlan lease of this network and VNI for this node's families; undefined when it is one. */
  problem: string | undefined;
}

/** Proper subnets: inside the family's cluster network, of the configured length. */
const proper4 = (req: LeaseRequest, s: Cidr | undefined) => (s && req.network && s.prefix === req.subnetLen && containsCidr(req.network, s) ? s : undefined);
const proper6 = (req: LeaseRequest, s: Cidr | undefined) => (s && req.network6 && s.prefix === req.subnetLen6 && containsCidr(req.network6, s) ? s : undefined);

/** Whether `s` has a proper subnet for each of the request's families, and none for another. */
function properFor(req: LeaseRequest, s: NodeSubnets | undefined): s is NodeSubnets {
  return !!s && !!proper4(req, s.v4) === !!req.network && !!proper6(req, s.v6) === !!req.network6 && (!s.v4 || !!req.network) && (!s.v6 || !!req.network6);
}

const wanted = (req: LeaseRequest) =>
  [req.network && `a /${req.subnetLen} subnet of ${formatCidr(req.network)}`, req.network6 && `a /${req.subnetLen6} subnet of ${formatCidr(req.network6)}`].filter(Boolean).join(' and ');

function held(conf: EtcdConf, kv: KeyValue, req: LeaseRequest): Held {
  const key = subnetsOfKey(conf, kv.key);
  const subnets = { v4: proper4(req, key?.v4), v6: proper6(req, key?.v6) };
  const v = parseLease(kv.value);
  const problem = !properFor(req, key) ? `not exactly ${wanted(req)}` : notOurVxlan(v, req.vni);
  return { kv, subnets, ips: publicIps(v), problem };
}

const sameSubnets = (a: NodeSubnets, b: NodeSubnets) => (a.v4 && formatCidr(a.v4)) === (b.v4 && formatCidr(b.v4)) && (a.v6 && formatCidr(a.v6)) === (b.v6 && formatCidr(b.v6));
const overlapsAny = (t: Held, c: NodeSubnets) => (!!t.subnets.v4 && !!c.v4 && overlaps(t.subnets.v4, c.v4)) || (!!t.subnets.v6 && !!c.v6 && overlaps(t.subnets.v6, c.v6));

/** The first free /len of `network` (from the second, as flannel's SubnetMin default: the first holds the network's own address). */
function firstFree(network: Cidr, len: number, taken: (s: Cidr) => boolean): Cidr | undefined {
  for (let n = 1, s = nthSubnet(network, len, n); s; s = nthSubnet(network, len, ++n)) if (!taken(s)) return s;
  return undefined;
}

/**
 * Leases this node's subnets (one per configured family, under one key): keeps or renews our etcd
 * lease, then writes our key with a create-if-absent transaction (or a compare-and-swap when the
 * key is already ours). Two nodes racing for a subnet cannot both win. An entry naming our address
 * is adopted only when it is a vxlan lease of our VNI with proper subnets of exactly our families
 * (as flannel checks): anyone who can write to etcd could plant one, and must not choose this
 * node's pod subnets. Our older keys of other families (a node turned dual-stack) are removed:
 * created earlier, they would win the peers' first-come check.
 */
export async function acquireLease(client: EtcdClient, conf: EtcdConf, req: LeaseRequest, log: Logger): Promise<Lease> {
  const leaseId = req.previousLease && (await client.keepAlive(req.previousLease)) ? req.previousLease : await client.grant(conf.leaseTTL);
  const value = leaseValue(req.ip, req.vni, req.mac);
  const previous = properFor(req, req.previous) ? req.previous : undefined;
  const fixedOk = (c: NodeSubnets) => (!req.fixed.v4 || sameSubnets({ v4: req.fixed.v4 }, { v4: c.v4 })) && (!req.fixed.v6 || sameSubnets({ v6: req.fixed.v6 }, { v6: c.v6 }));
  const reported = new Set<string>();
  for (let attempt = 0; attempt < 8; attempt++) {
    const { kvs } = await client.rangePrefix(subnetsPrefix(conf));
    const taken = kvs.map((kv) => held(conf, kv, req));
    const namesUs = (t: Held) => t.ips.includes(req.ip);
    for (const t of taken) {
      if (!namesUs(t) || !t.problem || reported.has(t.kv.key)) continue;
      reported.add(t.kv.key);
      log.error('ignoring a lease naming this node: it is not a lease of this network', { key: t.kv.key, reason: t.problem });
    }
    const ours = (t: Held) => namesUs(t) && !t.problem;
    const mine = taken.find(ours);
    const candidates = [...(previous ? [previous] : []), ...(mine ? [mine.subnets] : [])].filter(fixedOk);
    let choice: NodeSubnets | undefined;
    for (const c of candidates) {
      const holder = taken.find((t) => !ours(t) && overlapsAny(t, c));
      if (!holder) {
        choice = c;
        break;
      }
      log.warn('previous subnet is taken, leasing another', { subnet: formatCidr((c.v4 ?? c.v6)!), holder: holder.ips.join(' ') });
    }
    if (!choice) {
      const others = taken.filter((t) => !ours(t));
      for (const [fixed, family] of [[req.fixed.v4, 'v4'], [req.fixed.v6, 'v6']] as const) {
        const holder = fixed && others.find((t) => overlapsAny(t, { [family]: fixed }));
        if (fixed && holder) throw new CniError(ErrorCode.invalidConfig, `subnet ${formatCidr(fixed)} is leased by ${holder.ips.join(' ') || 'another node'}`, holder.kv.key);
      }
      const v4 = req.network && (req.fixed.v4 ?? firstFree(req.network, req.subnetLen, (s) => others.some((t) => overlapsAny(t, { v4: s }))));
      const v6 = req.network6 && (req.fixed.v6 ?? firstFree(req.network6, req.subnetLen6, (s) => others.some((t) => overlapsAny(t, { v6: s }))));
      if (req.network && !v4) throw new CniError(ErrorCode.tryAgainLater, `no free /${req.subnetLen} left in ${formatCidr(req.network)}`);
      if (req.network6 && !v6) throw new CniError(ErrorCode.tryAgainLater, `no free /${req.subnetLen6} left in ${formatCidr(req.network6)}`);
      choice = { v4, v6 };
    }
    const key = subnetKey(conf, choice);
    const current = taken.find((t) => t.kv.key === key);
    if (current && !ours(current)) {
      log.info('our subnet key is held by an entry we do not adopt, retrying', { key });
      continue;
    }
    const r = await client.putIf(key, value, leaseId, current ? { modRevision: current.kv.modRevision } : { absent: true });
    if (r.ok) {
      // Create-if-absent guards one key, but a subnet can sit in several (flannel's dual-stack key
      // joins both: `A&B` and an IPv4-only node's `A` are different keys). Of two nodes that took
      // overlapping subnets at once, the older key wins; the younger gives its key up and retries.
      const { kvs: now } = await client.rangePrefix(subnetsPrefix(conf));
      const mineNow = now.find((kv) => kv.key === key);
      const first = mineNow && now.map((kv) => held(conf, kv, req)).find((t) => t.kv.key !== key && !namesUs(t) && overlapsAny(t, choice) && t.kv.createRevision < mineNow.createRevision);
      if (first) {
        log.info('another node took an overlapping subnet first, retrying', { key, holder: first.kv.key });
        await client.delete(key);
        continue;
      }
      for (const stale of taken.filter((t) => namesUs(t) && t.kv.key !== key && !notOurVxlan(parseLease(t.kv.value), req.vni))) {
        log.warn('removing an older lease of this node', { key: stale.kv.key });
        await client.delete(stale.kv.key);
      }
      const after = await client.rangePrefix(subnetsPrefix(conf));
      return { subnets: choice, leaseId, kvs: after.kvs, revision: after.revision };
    }
    log.info('lost a subnet race, retrying', { key });
  }
  throw new CniError(ErrorCode.tryAgainLater, 'could not lease a subnet: too much contention in etcd');
}

/** Drops our registry entry (only if it still names us) and revokes our lease. */
export async function releaseLease(client: EtcdClient, conf: EtcdConf, subnets: NodeSubnets, ip: string, leaseId: string | undefined): Promise<void> {
  const key = subnetKey(conf, subnets);
  const kv = await client.get(key);
  if (kv && publicIps(parseLease(kv.value)).includes(ip)) await client.delete(key);
  if (leaseId) await client.revoke(leaseId);
}
