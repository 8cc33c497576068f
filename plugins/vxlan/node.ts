import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import type { Exec } from '../../lib/exec.ts';
import type { EtcdClient } from '../../lib/etcd/client.ts';
import { podFamilies, subnetsText, type Conf, type NodeSubnets } from './conf.ts';
import { overhead, planDevice, resolveUnderlay, type DeviceSpec, type Underlay } from './device.ts';
import { acquireLease, etcdClient, etcdPeerInputs } from './etcd-registry.ts';
import { applyNode, createNode, disableTxChecksum, ensureIpForward, type NodeLinks, type NodeObservation } from './kernel.ts';
import { validatePeers, vtepIp, vtepMac, type Peer, type PeerInput, type Self } from './peers.ts';
import { planPeerChanges, planPeers, type PeerState } from './reconcile.ts';
import { localPeers, type LocalPeers } from './sources.ts';
import { forgetApplied, readState, stateSubnets } from './state.ts';

/** What a verb needs from the node: its identity on the underlay and its pod subnets. */
export interface LocalNode {
  underlay: Underlay;
  mac: string;
  /** The pod MTU: the device's, so a full-size pod packet fits one underlay packet. */
  mtu: number;
  /** One per cluster network of the config; both ride the one device. */
  subnets: NodeSubnets;
  leaseId?: string | undefined;
}

export interface Env {
  exec: Exec;
  log: Logger;
}

export interface ReconcileSummary {
  peers: number;
  rejected: number;
  changed: number;
  removed: number;
  /** Why the device was re-created, if it was. */
  recreated?: string;
  /** Peers were left as they are: the source could not be read. */
  peersSkipped?: string;
  /** ADD found the device and the peer inputs as last reconciled, and left them alone. */
  unchanged?: true;
  /** What the peers were diffed against: the kernel's entries, or the applied record (see ReconcileMode in decide.ts). */
  diff?: 'kernel' | 'state';
}

export function deviceSpec(conf: Conf, node: LocalNode): DeviceSpec {
  return { name: conf.device, vni: conf.vni, port: conf.port, local: node.underlay.ip, underlay: node.underlay.dev, mac: node.mac, mtu: node.mtu, vtep: node.subnets.v4 && vtepIp(node.subnets.v4), vtep6: node.subnets.v6 && vtepIp(node.subnets.v6) };
}

export function localIdentity(conf: Conf, obs: NodeLinks): Pick<LocalNode, 'underlay' | 'mac' | 'mtu'> {
  const underlay = resolveUnderlay({ underlay: conf.underlay, localIP: conf.localIP }, obs.links, obs.routes);
  return { underlay, mac: vtepMac(conf.vni, underlay.ip), mtu: conf.mtu ?? underlay.mtu - overhead(underlay.family) };
}

/**
 * This node's subnets and the peer entries, from the configured source. An etcd that cannot be
 * reached is not fatal once the node has a subnet: the pods still get attached and the existing
 * routes stay; only a node that never had a subnet must wait (code 11).
 */
export async function resolveSubnetAndPeers(env: Env, conf: Conf, id: Pick<LocalNode, 'underlay' | 'mac'>, client?: EtcdClient, local?: LocalPeers): Promise<{ subnets: NodeSubnets; leaseId?: string; inputs?: PeerInput[]; skipped?: string }> {
  const source = conf.source;
  if (source.kind !== 'etcd') {
    const subnets = { v4: conf.subnet, v6: conf.subnet6 };
    const read = local ?? localPeers(source);
    return 'error' in read ? { subnets, skipped: read.error } : { subnets, inputs: read.inputs };
  }
  const state = readState(conf.stateDir, conf.device);
  const known = stateSubnets(state, conf);
  const own = client ?? etcdClient(source.etcd);
  try {
    const lease = await acquireLease(
      own,
      source.etcd,
      {
        network: conf.network,
        subnetLen: conf.subnetLen,
        network6: conf.network6,
        subnetLen6: conf.subnetLen6,
        fixed: { v4: conf.subnet, v6: conf.subnet6 },
        previous: state && state.ip === id.underlay.ip ? known : undefined,
        previousLease: state?.leaseId,
        ip: id.underlay.ip,
        vni: conf.vni,
        mac: id.mac,
      },
      env.log,
    );
    return { subnets: lease.subnets, leaseId: lease.leaseId, inputs: etcdPeerInputs(source.etcd, lease.kvs, conf.vni) };
  } catch (err) {
    const fixed = (!conf.network || conf.subnet) && (!conf.network6 || conf.subnet6) ? { v4: conf.subnet, v6: conf.subnet6 } : undefined;
    const have = fixed ?? known;
    if (err instanceof CniError || !have) {
      if (err instanceof CniError) throw err;
      throw new CniError(ErrorCode.tryAgainLater, `cannot lease a subnet: ${(err as Error).message}`);
    }
    return { subnets: have, ...(state?.leaseId ? { leaseId: state.leaseId } : {}), skipped: `etcd: ${(err as Error).message}` };
  } finally {
    if (!client) own.close();
  }
}

/** The peers programmed on the device, and which device: what the next reconcile may diff against. */
export interface Applied {
  ifindex: number;
  peers: Peer[];
}

export interface Reconciled {
  summary: ReconcileSummary;
  /** What is now programmed (undefined when the peers were left as they were: no peer data). */
  applied: Applied | undefined;
}

/**
 * Brings the node's device and peer entries to what is wanted, in one `ip -batch` and one
 * `bridge -batch`: the device created or verified, then only the peer entries that differ from
 * what `obs` read from the kernel. Bad peer entries are logged and skipped; `inputs` undefined
 * leaves the peer entries as they are.
 */
export async function reconcileNode(env: Env, conf: Conf, obs: NodeObservation, node: LocalNode, inputs: readonly PeerInput[] | undefined): Promise<Reconciled> {
  const current = obs.links.find((l) => l.ifname === conf.device);
  const device = planDevice(deviceSpec(conf, node), current);
  if (device.recreate) env.log.warn('re-creating the vxlan device', { device: conf.device, reason: device.recreate });
  const fresh = !current || device.recreate !== undefined;
  const summary: ReconcileSummary = { peers: 0, rejected: 0, changed: 0, removed: 0, diff: 'kernel', ...(device.recreate ? { recreated: device.recreate } : {}) };
  let peerLines = { ip: [] as string[], bridge: [] as string[] };
  let peers: Peer[] | undefined;
  if (inputs) {
    peers = acceptedPeers(env, conf, node, inputs);
    const plan = planPeers(conf.device, peers, fresh ? NO_PEERS : obs.peers);
    Object.assign(summary, { peers: peers.length, rejected: inputs.length - peers.length, changed: plan.changed, removed: plan.removed });
    peerLines = plan;
  } else {
    summary.peersSkipped = 'no peer data';
  }
  ensureIpForward(podFamilies(conf), node.underlay.dev);
  const ipLines = [...device.lines, ...peerLines.ip];
  if (ipLines.length || peerLines.bridge.length) forgetApplied(conf.stateDir, conf.device);
  let ifindex = current?.ifindex;
  if (fresh) {
    ifindex = await createNode(env.exec, conf.device, ipLines, peerLines.bridge);
    if (conf.disableTxChecksum) await disableTxChecksum(env.exec, conf.device);
  } else {
    await applyNode(env.exec, ipLines, peerLines.bridge);
  }
  return { summary, applied: peers && ifindex !== undefined ? { ifindex, peers } : undefined };
}

/** A device that does not exist holds no entries. */
export const NO_PEERS: PeerState = { routes: [], neighs: [], fdb: [] };

export const selfOf = (node: Pick<LocalNode, 'subnets' | 'underlay'>): Self => ({ subnet: node.subnets.v4, subnet6: node.subnets.v6, ip: node.underlay.ip });

/** Validations by input list, so one made ahead (see writer.ts) is not made again. */
const validated = new WeakMap<readonly PeerInput[], { self: string; result: ReturnType<typeof validatePeers> }>();

export function validateFor(conf: Conf, self: Self, inputs: readonly PeerInput[]): ReturnType<typeof validatePeers> {
  const key = `${subnetsText({ v4: self.subnet, v6: self.subnet6 })} ${self.ip}`;
  const known = validated.get(inputs);
  if (known?.self === key) return known.result;
  const result = validatePeers(inputs, self, conf, conf.vni);
  validated.set(inputs, { self: key, result });
  return result;
}

/**
 * The rejections last logged, by origin: `sync --watch` reconciles on every event and every 30 s,
 * and a bad entry is logged when it appears or its reason changes, not on each of those rounds.
 * One process, one node: a plugin call logs its rejections once anyway.
 */
let reported = new Map<string, string>();

function acceptedPeers(env: Env, conf: Conf, node: LocalNode, inputs: readonly PeerInput[]): Peer[] {
  const { peers, rejected } = validateFor(conf, selfOf(node), inputs);
  const now = new Map(rejected.map((r) => [r.origin, r.reason]));
  for (const [origin, reason] of now) if (reported.get(origin) !== reason) env.log.error('rejected peer', { origin, reason });
  reported = now;
  return peers;
}

/**
 * Applies the difference between the peers last applied and `inputs` without reading the kernel
 * back (flannel's event handling): the event path of `sync --watch` and a one-shot `sync` that
 * finds a usable record. A full reconcile repairs anything changed behind our back; a failing
 * batch makes the caller fall back to it.
 */
export async function applyPeerChanges(env: Env, conf: Conf, node: LocalNode, before: Applied, inputs: readonly PeerInput[]): Promise<Reconciled> {
  const peers = acceptedPeers(env, conf, node, inputs);
  const plan = planPeerChanges(conf.device, before.peers, peers);
  if (plan.ip.length || plan.bridge.length) {
    forgetApplied(conf.stateDir, conf.device);
    await applyNode(env.exec, plan.ip, plan.bridge);
  }
  return { summary: { peers: peers.length, rejected: inputs.length - peers.length, changed: plan.changed, removed: plan.removed, diff: 'state' }, applied: { ifindex: before.ifindex, peers } };
}
