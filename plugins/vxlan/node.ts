import { digest } from '../../lib/digest.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import type { Exec } from '../../lib/exec.ts';
import type { EtcdClient } from '../../lib/etcd/client.ts';
import { formatCidr, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import type { Conf } from './conf.ts';
import { overhead, planDevice, resolveUnderlay, type DeviceSpec, type Underlay } from './device.ts';
import { acquireLease, etcdClient, etcdPeerInputs } from './etcd-registry.ts';
import { applyNode, disableTxChecksum, ensureIpForward, ipForwardOn, observeLinks, observeNode, observePeerState, type NodeLinks, type NodeObservation } from './kernel.ts';
import { ensureMasq } from './masq.ts';
import { validatePeers, vtepIp, vtepMac, type Peer, type PeerInput } from './peers.ts';
import { planPeers, programmedState, type PeerState } from './reconcile.ts';
import { localPeers } from './sources.ts';
import { readState, writeState } from './state.ts';

/** What a verb needs from the node: its identity on the underlay and its pod subnet. */
export interface LocalNode {
  underlay: Underlay;
  mac: string;
  /** The pod MTU: the device's, so a full-size pod packet fits one underlay packet. */
  mtu: number;
  subnet: Cidr;
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
}

export function deviceSpec(conf: Conf, node: LocalNode): DeviceSpec {
  return { name: conf.device, vni: conf.vni, port: conf.port, local: node.underlay.ip, underlay: node.underlay.dev, mac: node.mac, mtu: node.mtu, vtep: vtepIp(node.subnet) };
}

export function localIdentity(conf: Conf, obs: NodeLinks): Pick<LocalNode, 'underlay' | 'mac' | 'mtu'> {
  const underlay = resolveUnderlay({ underlay: conf.underlay, localIP: conf.localIP }, obs.links, obs.routes);
  return { underlay, mac: vtepMac(conf.vni, underlay.ip), mtu: conf.mtu ?? underlay.mtu - overhead(underlay.family) };
}

/**
 * This node's subnet and the peer entries, from the configured source. An etcd that cannot be
 * reached is not fatal once the node has a subnet: the pods still get attached and the existing
 * routes stay; only a node that never had a subnet must wait (code 11).
 */
export async function resolveSubnetAndPeers(env: Env, conf: Conf, id: Pick<LocalNode, 'underlay' | 'mac'>, client?: EtcdClient): Promise<{ subnet: Cidr; leaseId?: string; inputs?: PeerInput[]; skipped?: string }> {
  const source = conf.source;
  if (source.kind !== 'etcd') {
    const subnet = conf.subnet!;
    const read = localPeers(source);
    return 'error' in read ? { subnet, skipped: read.error } : { subnet, inputs: read.inputs };
  }
  const state = readState(conf.stateDir, conf.device);
  const own = client ?? etcdClient(source.etcd);
  try {
    const lease = await acquireLease(
      own,
      source.etcd,
      {
        network: conf.network,
        subnetLen: conf.subnetLen,
        fixed: conf.subnet,
        previous: state && state.ip === id.underlay.ip ? parseSubnet(state.subnet) : undefined,
        previousLease: state?.leaseId,
        ip: id.underlay.ip,
        vni: conf.vni,
        mac: id.mac,
      },
      env.log,
    );
    return { subnet: lease.subnet, leaseId: lease.leaseId, inputs: etcdPeerInputs(source.etcd, lease.kvs, conf.vni) };
  } catch (err) {
    const known = conf.subnet ?? (state && parseSubnet(state.subnet));
    if (err instanceof CniError || !known) {
      if (err instanceof CniError) throw err;
      throw new CniError(ErrorCode.tryAgainLater, `cannot lease a subnet: ${(err as Error).message}`);
    }
    return { subnet: known, ...(state?.leaseId ? { leaseId: state.leaseId } : {}), skipped: `etcd: ${(err as Error).message}` };
  } finally {
    if (!client) own.close();
  }
}

/**
 * Brings the node's device and peer entries to what is wanted, in one `ip -batch` and one
 * `bridge -batch`: the device created or verified, then only the peer entries that differ. Bad
 * peer entries are logged and skipped; `inputs` undefined leaves the peer entries as they are.
 */
export interface Reconciled {
  summary: ReconcileSummary;
  /** The peers now programmed (undefined when peers were left as they were). */
  applied: Peer[] | undefined;
}

export async function reconcileNode(env: Env, conf: Conf, obs: NodeObservation, node: LocalNode, inputs: readonly PeerInput[] | undefined): Promise<Reconciled> {
  const current = obs.links.find((l) => l.ifname === conf.device);
  const device = planDevice(deviceSpec(conf, node), current);
  if (device.recreate) env.log.warn('re-creating the vxlan device', { device: conf.device, reason: device.recreate });
  const fresh = !current || device.recreate !== undefined;
  const summary: ReconcileSummary = { peers: 0, rejected: 0, changed: 0, removed: 0, ...(device.recreate ? { recreated: device.recreate } : {}) };
  let peerLines = { ip: [] as string[], bridge: [] as string[] };
  let applied: Peer[] | undefined;
  if (inputs) {
    const peers = (applied = acceptedPeers(env, conf, node, inputs));
    const plan = planPeers(conf.device, peers, fresh ? { routes: [], neighs: [], fdb: [] } : obs.peers);
    Object.assign(summary, { peers: peers.length, rejected: inputs.length - peers.length, changed: plan.changed, removed: plan.removed });
    peerLines = plan;
  } else {
    summary.peersSkipped = 'no peer data';
  }
  ensureIpForward();
  await applyNode(env.exec, [...device.lines, ...peerLines.ip], peerLines.bridge, !fresh);
  if (fresh && conf.disableTxChecksum) await disableTxChecksum(env.exec, conf.device);
  return { summary, applied };
}

function acceptedPeers(env: Env, conf: Conf, node: LocalNode, inputs: readonly PeerInput[]): Peer[] {
  const { peers, rejected } = validatePeers(inputs, { subnet: node.subnet, ip: node.underlay.ip }, conf.network, conf.vni);
  for (const r of rejected) env.log.error('rejected peer', { origin: r.origin, reason: r.reason });
  return peers;
}

/**
 * The event path of `sync --watch`: applies the difference between the peers last applied and
 * `inputs` without reading the kernel back (flannel's event handling). The periodic full reconcile
 * repairs anything changed behind our back; a failing batch makes the caller fall back to it.
 */
export async function applyPeerChanges(env: Env, conf: Conf, node: LocalNode, before: readonly Peer[], inputs: readonly PeerInput[]): Promise<Reconciled> {
  const peers = acceptedPeers(env, conf, node, inputs);
  const plan = planPeers(conf.device, peers, programmedState(conf.device, before));
  await applyNode(env.exec, plan.ip, plan.bridge, true);
  return { summary: { peers: peers.length, rejected: inputs.length - peers.length, changed: plan.changed, removed: plan.removed }, applied: peers };
}

/**
 * Concurrent ADDs on one node reconcile the same device: one may create it (or delete a departed
 * peer's entry) between another's read and write, whose batch then stops at "File exists" or
 * "No such ...". Reading again and applying the new difference converges.
 */
async function reconcileRacing(env: Env, conf: Conf, obs: NodeObservation, node: LocalNode, inputs: readonly PeerInput[] | undefined): Promise<Reconciled> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await reconcileNode(env, conf, obs, node, inputs);
    } catch (err) {
      const raced = /File exists|No such (file|process|device)|Cannot find device/.test((err as Error).message);
      if (!raced || attempt >= 4) throw err;
      env.log.debug('reconcile raced another; reading again', { error: (err as Error).message });
      obs = await observeNode(env.exec, conf.device);
    }
  }
}

/**
 * What a reconcile decided from: the device as specified and every peer input. Equal digests mean
 * an equal reconcile outcome, so an ADD may skip it (see `ensureNode`).
 */
export function peersDigest(conf: Conf, node: LocalNode, inputs: readonly PeerInput[]): string {
  return digest('sha256', JSON.stringify([deviceSpec(conf, node), formatCidr(conf.network), inputs])).toString('base64url');
}

/**
 * The whole node step of ADD and of `tscni vxlan sync`: observe, lease, reconcile, remember.
 * With `reuse` (ADD), a node whose device is as specified and whose peer inputs are those of the
 * last reconcile (the digest in its state file) skips reading and re-planning its peer entries:
 * with 1,000 peers that read alone is three dumps of 1,000 entries. `sync`, CHECK and the periodic
 * resync of `sync --watch` still compare everything with the kernel.
 */
export async function ensureNode(env: Env, conf: Conf, options: { client?: EtcdClient; reuse?: boolean } = {}): Promise<{ node: LocalNode; summary: ReconcileSummary; applied: Peer[] | undefined }> {
  const full = options.reuse ? undefined : await observeNode(env.exec, conf.device);
  const base = full ?? (await observeLinks(env.exec));
  const id = localIdentity(conf, base);
  const resolved = await resolveSubnetAndPeers(env, conf, id, options.client);
  if (resolved.skipped) env.log.error('peers left unchanged', { reason: resolved.skipped });
  const node: LocalNode = { ...id, subnet: resolved.subnet, leaseId: resolved.leaseId };
  const digest = resolved.inputs && peersDigest(conf, node, resolved.inputs);
  if (options.reuse && digest && readState(conf.stateDir, conf.device)?.digest === digest && deviceAsSpecified(conf, node, base)) {
    if (conf.ipMasq) await ensureMasq(env.exec, conf.device, formatCidr(node.subnet), formatCidr(conf.network));
    return { node, summary: { peers: 0, rejected: 0, changed: 0, removed: 0, unchanged: true }, applied: undefined };
  }
  // a device that does not exist holds no entries: nothing to read
  const current: NodeObservation = full ?? { ...base, peers: base.links.some((l) => l.ifname === conf.device) ? await observePeerState(env.exec, conf.device) : NO_PEERS };
  const { summary, applied } = await reconcileRacing(env, conf, current, node, resolved.inputs);
  if (resolved.skipped) summary.peersSkipped = resolved.skipped;
  if (conf.ipMasq) await ensureMasq(env.exec, conf.device, formatCidr(node.subnet), formatCidr(conf.network));
  rememberNode(conf, node, digest);
  return { node, summary, applied };
}

const NO_PEERS: PeerState = { routes: [], neighs: [], fdb: [] };

function deviceAsSpecified(conf: Conf, node: LocalNode, obs: NodeLinks): boolean {
  const device = obs.links.find((l) => l.ifname === conf.device);
  return !!device && planDevice(deviceSpec(conf, node), device).lines.length === 0 && ipForwardOn();
}

/** The state file: subnet, lease, identity and the digest of what was just applied (none: reconcile next time). */
export function rememberNode(conf: Conf, node: LocalNode, digest: string | undefined): void {
  writeState(conf.stateDir, conf.device, { subnet: formatCidr(node.subnet), ip: node.underlay.ip, mac: node.mac, ...(node.leaseId ? { leaseId: node.leaseId } : {}), ...(digest ? { digest } : {}) });
}
