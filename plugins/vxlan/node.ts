import { digest } from '../../lib/digest.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import type { Exec } from '../../lib/exec.ts';
import type { EtcdClient } from '../../lib/etcd/client.ts';
import { formatCidr, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import type { Conf } from './conf.ts';
import { overhead, planDevice, resolveUnderlay, type DeviceSpec, type Underlay } from './device.ts';
import { acquireLease, etcdClient, etcdPeerInputs } from './etcd-registry.ts';
import { applyNode, createNode, disableTxChecksum, ensureIpForward, ipForwardOn, observeLinks, observeNode, observePeerState, type NodeLinks, type NodeObservation } from './kernel.ts';
import { ensureMasq } from './masq.ts';
import { validatePeers, vtepIp, vtepMac, type Peer, type PeerInput, type Self } from './peers.ts';
import { planPeerChanges, planPeers, type PeerState } from './reconcile.ts';
import { lockDevice } from '../../lib/store/file-lock.ts';
import { localPeers, type LocalPeers } from './sources.ts';
import { forgetApplied, readApplied, readState, writeApplied, writeState, type AppliedRecord, type NodeState } from './state.ts';

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
  /** What the peers were diffed against: the kernel's entries, or the applied record (see ReconcileMode). */
  diff?: 'kernel' | 'state';
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
export async function resolveSubnetAndPeers(env: Env, conf: Conf, id: Pick<LocalNode, 'underlay' | 'mac'>, client?: EtcdClient, local?: LocalPeers): Promise<{ subnet: Cidr; leaseId?: string; inputs?: PeerInput[]; skipped?: string }> {
  const source = conf.source;
  if (source.kind !== 'etcd') {
    const subnet = conf.subnet!;
    const read = local ?? localPeers(source);
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
  ensureIpForward();
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

/** Validations by input list, so one made ahead (see `ensureNode`) is not made again. */
const validated = new WeakMap<readonly PeerInput[], { self: string; result: ReturnType<typeof validatePeers> }>();

function validateFor(conf: Conf, self: Self, inputs: readonly PeerInput[]): ReturnType<typeof validatePeers> {
  const key = `${formatCidr(self.subnet)} ${self.ip}`;
  const known = validated.get(inputs);
  if (known?.self === key) return known.result;
  const result = validatePeers(inputs, self, conf.network, conf.vni);
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
  const { peers, rejected } = validateFor(conf, { subnet: node.subnet, ip: node.underlay.ip }, inputs);
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
 * How `ensureNode` finds what the device holds:
 * - `full` reads every route, neighbour and FDB entry of the device and applies the difference:
 *   it repairs anything changed behind our back (`sync --full`, `sync --watch` at start and every 30 s);
 * - `sync` diffs against the applied record when it is usable (the same device, as specified):
 *   one change among 1,000 peers costs no read of 3,000 entries; otherwise it reads as `full`;
 * - `add` skips the peer step when the record's digest is that of the inputs; otherwise it reads as `full`.
 * Every reconcile runs under the device's lock (see lib/store/file-lock.ts); only `add`'s skip takes none.
 */
export type ReconcileMode = 'full' | 'sync' | 'add';

/** The whole node step of ADD and of `tscni vxlan sync`: observe, lease, reconcile, remember. */
export async function ensureNode(env: Env, conf: Conf, options: { client?: EtcdClient; mode?: ReconcileMode } = {}): Promise<{ node: LocalNode; summary: ReconcileSummary; applied: AppliedRecord | undefined }> {
  const mode = options.mode ?? 'full';
  // an ADD reads without the lock: most find their inputs applied already and change nothing
  let lock = mode === 'add' ? undefined : await lockDevice(conf.stateDir, conf.device, env.log);
  try {
    // the files are read and parsed while `ip` reads the kernel
    const observing: Promise<NodeLinks | NodeObservation> = mode === 'full' ? observeNode(env.exec, conf.device) : observeLinks(env.exec);
    const local = conf.source.kind === 'etcd' ? undefined : localPeers(conf.source);
    const stored = mode === 'full' || lock?.exclusive === false ? undefined : readApplied(conf.stateDir, conf.device, { peers: mode === 'sync' });
    // validation needs this node's underlay address, which `ip` is still reading: validate with the
    // one it had last time meanwhile (used only if the read confirms it); an ADD mostly skips it
    const lastIp = mode === 'add' ? undefined : (conf.localIP ?? readState(conf.stateDir, conf.device)?.ip);
    if (conf.subnet && lastIp && local && 'inputs' in local) validateFor(conf, { subnet: conf.subnet, ip: lastIp }, local.inputs);
    const base = await observing;
    const full = 'peers' in base ? base : undefined;
    const id = localIdentity(conf, base);
    const resolved = await resolveSubnetAndPeers(env, conf, id, options.client, local);
    if (resolved.skipped) env.log.error('peers left unchanged', { reason: resolved.skipped });
    const node: LocalNode = { ...id, subnet: resolved.subnet, leaseId: resolved.leaseId };
    const digest = resolved.inputs && peersDigest(conf, node, resolved.inputs);
    const applies = (r: AppliedRecord | undefined) => !!digest && !!r && r.digest === digest && !!usableRecord(conf, node, base, r);
    const unchanged = async () => {
      if (conf.ipMasq) await ensureMasq(env.exec, conf.device, formatCidr(node.subnet), formatCidr(conf.network));
      return { node, summary: { peers: 0, rejected: 0, changed: 0, removed: 0, unchanged: true as const }, applied: undefined };
    };
    if (mode === 'add' && applies(stored)) return await unchanged();
    if (!lock) {
      lock = await lockDevice(conf.stateDir, conf.device, env.log);
      // another ADD may just have applied these same inputs
      if (lock.exclusive && applies(readApplied(conf.stateDir, conf.device, { peers: false }))) return await unchanged();
    }
    // without the lock alone, another writer may be changing entries: no record is trusted or left
    if (!lock.exclusive) forgetApplied(conf.stateDir, conf.device);
    const record = lock.exclusive && stored ? usableRecord(conf, node, base, stored) : undefined;
    let result: Reconciled | undefined;
    if (mode === 'sync' && record && resolved.inputs) {
      result = await applyPeerChanges(env, conf, node, record, resolved.inputs).catch((err: unknown) => {
        env.log.warn('applying the difference failed; reconciling from the kernel', { error: (err as Error).message });
        return undefined;
      });
    }
    if (!result) {
      // a device that does not exist holds no entries: nothing to read (an ADD read the links
      // before it held the lock: it reads them again with the entries)
      const exists = base.links.some((l) => l.ifname === conf.device);
      const current: NodeObservation = full ?? (!exists ? { ...base, peers: NO_PEERS } : mode === 'add' ? await observeNode(env.exec, conf.device) : { ...base, peers: await observePeerState(env.exec, conf.device) });
      result = await reconcileRacing(env, conf, current, node, resolved.inputs);
    }
    const { summary, applied } = result;
    if (resolved.skipped) summary.peersSkipped = resolved.skipped;
    if (conf.ipMasq) await ensureMasq(env.exec, conf.device, formatCidr(node.subnet), formatCidr(conf.network));
    // a record that already says what was applied, from these inputs, is not written again
    const same = summary.diff === 'state' && !summary.changed && !summary.removed && record?.digest === digest;
    const trusted = lock.exclusive && lock.mine();
    rememberNode(conf, node, digest, same || !trusted ? undefined : applied);
    if (!trusted) forgetApplied(conf.stateDir, conf.device);
    return { node, summary, applied: trusted && applied ? { ...applied, digest } : undefined };
  } finally {
    lock?.release();
  }
}

const NO_PEERS: PeerState = { routes: [], neighs: [], fdb: [] };

/** The applied record, if it describes the device as it is: the same ifindex, as specified, forwarding on. */
function usableRecord(conf: Conf, node: LocalNode, obs: NodeLinks, record: AppliedRecord): AppliedRecord | undefined {
  const device = obs.links.find((l) => l.ifname === conf.device);
  if (device?.ifindex !== record.ifindex || planDevice(deviceSpec(conf, node), device).lines.length > 0 || !ipForwardOn()) return undefined;
  return record;
}

/**
 * The state file (subnet, lease, identity) and, when the peers on the device are known, the
 * applied record; without them the record stays as it is (a reconcile that changed entries
 * removed it first).
 */
export function rememberNode(conf: Conf, node: LocalNode, digest: string | undefined, applied: Applied | undefined): void {
  const state: NodeState = { subnet: formatCidr(node.subnet), ip: node.underlay.ip, mac: node.mac, ...(node.leaseId ? { leaseId: node.leaseId } : {}) };
  const known = readState(conf.stateDir, conf.device);
  if (!known || JSON.stringify(known) !== JSON.stringify(state)) writeState(conf.stateDir, conf.device, state);
  if (applied) writeApplied(conf.stateDir, conf.device, { ...applied, digest });
}
