import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import { EtcdClient, type KeyValue } from '../../lib/etcd/client.ts';
import type { EtcdConf } from './conf.ts';
import { containsCidr, formatCidr, nthSubnet, overlaps, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import type { PeerInput } from './peers.ts';

/**
 * Subnet leases in etcd, in flannel's layout so flannel nodes and ours can share a registry:
 * `<prefix>/subnets/10.244.1.0-24` → `{"PublicIP":…,"BackendType":"vxlan","BackendData":{"VNI":…,"VtepMAC":…}}`.
 */

export const subnetsPrefix = (conf: EtcdConf) => `${conf.prefix.replace(/\/+$/, '')}/subnets/`;
export const subnetKey = (conf: EtcdConf, subnet: Cidr) => `${subnetsPrefix(conf)}${formatCidr(subnet).replace('/', '-')}`;

export interface LeaseValue {
  PublicIP: string;
  BackendType: 'vxlan';
  BackendData: { VNI: number; VtepMAC: string };
}

export const leaseValue = (ip: string, vni: number, mac: string): string =>
  JSON.stringify({ PublicIP: ip, BackendType: 'vxlan', BackendData: { VNI: vni, VtepMAC: mac } } satisfies LeaseValue);

function subnetOfKey(conf: EtcdConf, key: string): Cidr | undefined {
  const tail = key.slice(subnetsPrefix(conf).length);
  return parseSubnet(tail.replace(/-(\d+)$/, '/$1'));
}

function publicIpOf(kv: KeyValue): string | undefined {
  try {
    const v = JSON.parse(kv.value) as { PublicIP?: unknown };
    return typeof v.PublicIP === 'string' ? v.PublicIP : undefined;
  } catch {
    return undefined;
  }
}

/** One registry entry as a peer input (validated later with the rest). */
export function etcdPeerInput(conf: EtcdConf, kv: KeyValue, vni: number): PeerInput {
  const subnet = subnetOfKey(conf, kv.key);
  let v: Partial<LeaseValue> | undefined;
  try {
    v = JSON.parse(kv.value) as Partial<LeaseValue>;
  } catch {
    return { origin: kv.key, entry: 'unparsable JSON' };
  }
  if (!subnet || v?.BackendType !== 'vxlan' || v.BackendData?.VNI !== vni) {
    return { origin: kv.key, entry: `not a vxlan lease for VNI ${vni}` };
  }
  return { origin: kv.key, entry: { subnet: formatCidr(subnet), ip: v.PublicIP, mac: v.BackendData?.VtepMAC } };
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
  network: Cidr;
  subnetLen: number;
  /** A fixed subnet from the config: leased or refused, never another one. */
  fixed?: Cidr | undefined;
  /** The subnet this node had before (state file): reclaimed when still free or still ours. */
  previous?: Cidr | undefined;
  previousLease?: string | undefined;
  ip: string;
  vni: number;
  mac: string;
}

export interface Lease {
  subnet: Cidr;
  leaseId: string;
  kvs: KeyValue[];
  revision: number;
}

/** A registry entry as leasing sees it. */
interface Held {
  kv: KeyValue;
  /** The key's subnet when it is a `/subnetLen` of the cluster network: no other key takes room in it. */
  subnet: Cidr | undefined;
  ip: string | undefined;
  /** Why it is no vxlan lease of this network and VNI; undefined when it is one. */
  problem: string | undefined;
}

function held(conf: EtcdConf, kv: KeyValue, req: LeaseRequest): Held {
  const key = subnetOfKey(conf, kv.key);
  const subnet = key && properSubnet(req, key) ? key : undefined;
  let v: Partial<LeaseValue> | null | undefined;
  try {
    v = JSON.parse(kv.value) as Partial<LeaseValue> | null;
  } catch {
    v = undefined;
  }
  const ip = typeof v?.PublicIP === 'string' ? v.PublicIP : undefined;
  const problem = !subnet
    ? `not a /${req.subnetLen} subnet of the cluster network ${formatCidr(req.network)}`
    : v?.BackendType !== 'vxlan'
      ? `backend ${JSON.stringify(v?.BackendType ?? null)}, not vxlan`
      : v.BackendData?.VNI !== req.vni
        ? `VNI ${JSON.stringify(v.BackendData?.VNI ?? null)}, ours is ${req.vni}`
        : undefined;
  return { kv, subnet, ip, problem };
}

/** A subnet this node may hold: inside the cluster network, of the configured length. */
const properSubnet = (req: Pick<LeaseRequest, 'network' | 'subnetLen'>, s: Cidr) => s.prefix === req.subnetLen && containsCidr(req.network, s);

/**
 * Leases this node's subnet: keeps or renews our etcd lease, then writes our key with a
 * create-if-absent transaction (or a compare-and-swap when the key is already ours). Two nodes
 * racing for a subnet cannot both win. An entry naming our address is adopted only when it is a
 * vxlan lease of our VNI for a proper subnet (as flannel checks): anyone who can write to etcd
 * could plant one, and must not choose this node's pod subnet.
 */
export async function acquireLease(client: EtcdClient, conf: EtcdConf, req: LeaseRequest, log: Logger): Promise<Lease> {
  const leaseId = req.previousLease && (await client.keepAlive(req.previousLease)) ? req.previousLease : await client.grant(conf.leaseTTL);
  const value = leaseValue(req.ip, req.vni, req.mac);
  const previous = req.previous && properSubnet(req, req.previous) ? req.previous : undefined;
  const reported = new Set<string>();
  for (let attempt = 0; attempt < 8; attempt++) {
    const { kvs } = await client.rangePrefix(subnetsPrefix(conf));
    const taken = kvs.map((kv) => held(conf, kv, req));
    for (const t of taken) {
      if (t.ip !== req.ip || !t.problem || reported.has(t.kv.key)) continue;
      reported.add(t.kv.key);
      log.error('ignoring a lease naming this node: it is not a lease of this network', { key: t.kv.key, reason: t.problem });
    }
    const ours = (t: Held | undefined) => t !== undefined && t.ip === req.ip && !t.problem;
    const mine = taken.find(ours);
    const candidates: Cidr[] = req.fixed ? [req.fixed] : [...(previous ? [previous] : []), ...(mine?.subnet ? [mine.subnet] : [])];
    let choice: Cidr | undefined;
    let current: KeyValue | undefined;
    for (const c of candidates) {
      const holder = taken.find((t) => t.subnet && formatCidr(t.subnet) === formatCidr(c));
      if (!holder || ours(holder)) {
        choice = c;
        current = holder?.kv;
        break;
      }
      if (req.fixed) throw new CniError(ErrorCode.invalidConfig, `subnet ${formatCidr(c)} is leased by ${holder.ip ?? 'another node'}`, holder.kv.key);
      log.warn('previous subnet is taken, leasing another', { subnet: formatCidr(c), holder: holder.ip });
    }
    if (!choice) {
      // from the second subnet, as flannel's SubnetMin default: the first holds the network's own address
      for (let n = 1, s = nthSubnet(req.network, req.subnetLen, n); s && !choice; s = nthSubnet(req.network, req.subnetLen, ++n)) {
        if (!taken.some((t) => t.subnet && overlaps(t.subnet, s))) choice = s;
      }
      if (!choice) throw new CniError(ErrorCode.tryAgainLater, `no free /${req.subnetLen} left in ${formatCidr(req.network)}`);
    }
    const key = subnetKey(conf, choice);
    const r = await client.putIf(key, value, leaseId, current ? { modRevision: current.modRevision } : { absent: true });
    if (r.ok) {
      const after = await client.rangePrefix(subnetsPrefix(conf));
      return { subnet: choice, leaseId, kvs: after.kvs, revision: after.revision };
    }
    log.info('lost a subnet race, retrying', { subnet: formatCidr(choice) });
  }
  throw new CniError(ErrorCode.tryAgainLater, 'could not lease a subnet: too much contention in etcd');
}

/** Drops our registry entry (only if it is still ours) and revokes our lease. */
export async function releaseLease(client: EtcdClient, conf: EtcdConf, subnet: Cidr, ip: string, leaseId: string | undefined): Promise<void> {
  const key = subnetKey(conf, subnet);
  const kv = await client.get(key);
  if (kv && publicIpOf(kv) === ip) await client.delete(key);
  if (leaseId) await client.revoke(leaseId);
}
