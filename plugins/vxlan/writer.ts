import { digest } from '../../lib/digest.ts';
import type { EtcdClient } from '../../lib/etcd/client.ts';
import { formatCidr } from '../../lib/net/ip.ts';
import { podFamilies, subnetsText, type Conf } from './conf.ts';
import { decideEntry, decideReconcile, decideRecord, type LockHold, type NodeFacts, type ReconcileMode, type ReconcilePlan } from './decide.ts';
import { planDevice } from './device.ts';
import { ipForwardOn, observeLinks, observeNode, observePeerState, type NodeLinks, type NodeObservation } from './kernel.ts';
import { lockDevice, type DeviceLock } from '../../lib/store/file-lock.ts';
import { ensureMasq, type MasqFamily } from './masq.ts';
import { applyPeerChanges, deviceSpec, localIdentity, NO_PEERS, reconcileNode, resolveSubnetAndPeers, validateFor, type Applied, type Env, type LocalNode, type Reconciled, type ReconcileSummary } from './node.ts';
import type { PeerInput } from './peers.ts';
import { localPeers } from './sources.ts';
import { forgetApplied, readApplied, readState, sameRecord, writeApplied, writeState, type AppliedRecord, type NodeState } from './state.ts';

/**
 * The lock and record protocol, in one place for ADD, `tscni vxlan sync` and the watcher's events:
 * take the device's lock (lock.ts), read the applied record, decide (decide.ts), remove the record
 * before a batch that changes peer entries (node.ts does it next to each batch), apply, and write
 * the record after, unless the lock was not this writer's alone from start to end.
 */

export interface NodeOutcome {
  node: LocalNode;
  summary: ReconcileSummary;
  /** What is now applied, as the record says it (undefined when no record was written or kept). */
  applied: AppliedRecord | undefined;
}

/**
 * What a reconcile decided from: the device as specified and every peer input. Equal digests mean
 * an equal reconcile outcome, so an ADD may skip it.
 */
export function peersDigest(conf: Conf, node: LocalNode, inputs: readonly PeerInput[]): string {
  return digest('sha256', JSON.stringify([deviceSpec(conf, node), subnetsText({ v4: conf.network, v6: conf.network6 }), inputs])).toString('base64url');
}

/** The whole node step of ADD and of `tscni vxlan sync`: observe, lease, decide, reconcile, remember. */
export async function ensureNode(env: Env, conf: Conf, options: { client?: EtcdClient; mode?: ReconcileMode } = {}): Promise<NodeOutcome> {
  const mode = options.mode ?? 'full';
  // an ADD reads without the lock: most find their inputs applied already and change nothing
  let lock = mode === 'add' ? undefined : await lockDevice(conf.stateDir, conf.device, env.log);
  try {
    const seen = await observeForNode(env, conf, mode, lock, options.client);
    let record = seen.stored;
    let facts = nodeFacts(conf, mode, lock, seen, record);
    if (decideEntry(facts) === 'skip') return await unchanged(env, conf, seen.node);
    if (!lock) {
      lock = await lockDevice(conf.stateDir, conf.device, env.log);
      record = lock.exclusive ? readApplied(conf.stateDir, conf.device, { peers: false }) : undefined;
      facts = nodeFacts(conf, mode, lock, seen, record);
      if (decideEntry(facts) === 'skip') return await unchanged(env, conf, seen.node);
    }
    const trusted = lock.exclusive && facts.record?.usable ? record : undefined;
    return await applyAsWriter(env, conf, lock, decideReconcile(facts), { ...seen, record: trusted, masq: conf.ipMasq });
  } finally {
    lock?.release();
  }
}

/**
 * One reconcile of the watcher (`sync --watch`) on an event or a tick: `memory` is the record it
 * wrote last, trusted only while the record on disk is still that one (another writer, an ADD or
 * a one-shot sync, may have changed the entries since); undefined reads the kernel.
 */
export async function reconcileAsWatcher(env: Env, conf: Conf, node: LocalNode, memory: AppliedRecord | undefined, inputs: PeerInput[] | undefined): Promise<NodeOutcome> {
  const lock = await lockDevice(conf.stateDir, conf.device, env.log);
  try {
    const usable = memory !== undefined && lock.exclusive && sameRecord(readApplied(conf.stateDir, conf.device, { peers: false }), memory);
    if (memory && !usable) env.log.info('the applied record changed under the watcher; reconciling from the kernel');
    const facts: NodeFacts = { mode: 'sync', lock: hold(lock), digest: undefined, record: memory && { digest: memory.digest, usable }, kernel: 'none', deviceExists: false, hasInputs: inputs !== undefined };
    return await applyAsWriter(env, conf, lock, decideReconcile(facts), { node, inputs, digest: undefined, obs: undefined, record: usable ? memory : undefined, masq: false });
  } finally {
    lock.release();
  }
}

/** What `ensureNode` observed before deciding. */
interface Seen {
  obs: NodeLinks | NodeObservation;
  node: LocalNode;
  inputs: PeerInput[] | undefined;
  /** Why the peers are left as they are (the source could not be read). */
  skipped?: string | undefined;
  digest: string | undefined;
  /** The applied record as read (its peers only for `sync`), when the lock allows trusting one. */
  stored: AppliedRecord | undefined;
}

async function observeForNode(env: Env, conf: Conf, mode: ReconcileMode, lock: DeviceLock | undefined, client: EtcdClient | undefined): Promise<Seen> {
  // the files are read and parsed while `ip` reads the kernel
  const observing: Promise<NodeLinks | NodeObservation> = mode === 'full' ? observeNode(env.exec, conf.device, !!conf.network6) : observeLinks(env.exec);
  const local = conf.source.kind === 'etcd' ? undefined : localPeers(conf.source);
  const stored = mode === 'full' || lock?.exclusive === false ? undefined : readApplied(conf.stateDir, conf.device, { peers: mode === 'sync' });
  // validation needs this node's underlay address, which `ip` is still reading: validate with the
  // one it had last time meanwhile (used only if the read confirms it); an ADD mostly skips it
  const lastIp = mode === 'add' ? undefined : (conf.localIP ?? readState(conf.stateDir, conf.device)?.ip);
  if (lastIp && local && 'inputs' in local) validateFor(conf, { subnet: conf.subnet, subnet6: conf.subnet6, ip: lastIp }, local.inputs);
  const obs = await observing;
  const id = localIdentity(conf, obs);
  const resolved = await resolveSubnetAndPeers(env, conf, id, client, local);
  if (resolved.skipped) env.log.error('peers left unchanged', { reason: resolved.skipped });
  const node: LocalNode = { ...id, subnets: resolved.subnets, leaseId: resolved.leaseId };
  return { obs, node, inputs: resolved.inputs, skipped: resolved.skipped, digest: resolved.inputs && peersDigest(conf, node, resolved.inputs), stored };
}

const hold = (lock: DeviceLock | undefined): LockHold => (lock === undefined ? 'none' : lock.exclusive ? 'exclusive' : 'shared');

function nodeFacts(conf: Conf, mode: ReconcileMode, lock: DeviceLock | undefined, seen: Seen, record: AppliedRecord | undefined): NodeFacts {
  return {
    mode,
    lock: hold(lock),
    digest: seen.digest,
    record: record && { digest: record.digest, usable: usableRecord(conf, seen.node, seen.obs, record) },
    kernel: 'peers' in seen.obs ? 'node' : 'links',
    deviceExists: seen.obs.links.some((l) => l.ifname === conf.device),
    hasInputs: seen.inputs !== undefined,
  };
}

/** Whether the record describes the device as it is: the same ifindex, as specified, forwarding on. */
function usableRecord(conf: Conf, node: LocalNode, obs: NodeLinks, record: AppliedRecord): boolean {
  const device = obs.links.find((l) => l.ifname === conf.device);
  return device?.ifindex === record.ifindex && planDevice(deviceSpec(conf, node), device).lines.length === 0 && ipForwardOn(podFamilies(conf));
}

/** The masquerade of each pod family: this node's subnet, the cluster network. */
function masqFamilies(conf: Conf, node: LocalNode): MasqFamily[] {
  const out: MasqFamily[] = [];
  if (conf.network && node.subnets.v4) out.push({ family: 4, subnet: formatCidr(node.subnets.v4), network: formatCidr(conf.network) });
  if (conf.network6 && node.subnets.v6) out.push({ family: 6, subnet: formatCidr(node.subnets.v6), network: formatCidr(conf.network6) });
  return out;
}

async function unchanged(env: Env, conf: Conf, node: LocalNode): Promise<NodeOutcome> {
  if (conf.ipMasq) await ensureMasq(env.exec, conf.device, masqFamilies(conf, node));
  return { node, summary: { peers: 0, rejected: 0, changed: 0, removed: 0, unchanged: true }, applied: undefined };
}

/** What a writer reconciles: the node, its inputs and what it read already, the record it may trust. */
interface Writing {
  node: LocalNode;
  inputs: PeerInput[] | undefined;
  skipped?: string | undefined;
  digest: string | undefined;
  obs: NodeLinks | NodeObservation | undefined;
  /** A record trusted as true (decideReconcile diffs against it in `sync`), with its peers. */
  record: AppliedRecord | undefined;
  /** Ensure the node-wide masquerade (ADD and sync; a watch event changes no subnet). */
  masq: boolean;
}

/** The writer's part under the lock: apply the plan, then write, keep or forget the record. */
async function applyAsWriter(env: Env, conf: Conf, lock: DeviceLock, plan: ReconcilePlan, w: Writing): Promise<NodeOutcome> {
  if (plan.forgetRecord) forgetApplied(conf.stateDir, conf.device);
  let node = w.node;
  let result: Reconciled | undefined;
  if (plan.diffRecord && w.record && w.inputs) {
    result = await applyPeerChanges(env, conf, node, w.record, w.inputs).catch((err: unknown) => {
      env.log.warn('applying the difference failed; reconciling from the kernel', { error: (err as Error).message });
      return undefined;
    });
  }
  if (!result) {
    const obs = await readKernel(env, conf, plan, w.obs);
    // links read again under the lock say who this node is now
    if (obs.links !== w.obs?.links) node = withIdentity(node, localIdentity(conf, obs));
    result = await reconcileRacing(env, conf, obs, node, w.inputs);
  }
  const { summary, applied } = result;
  if (w.skipped) summary.peersSkipped = w.skipped;
  if (w.masq) await ensureMasq(env.exec, conf.device, masqFamilies(conf, node));
  const inputsDigest = node === w.node && w.digest !== undefined ? w.digest : w.inputs && peersDigest(conf, node, w.inputs);
  const step = decideRecord({
    lock: lock.exclusive ? 'exclusive' : 'shared',
    mine: lock.mine(),
    known: applied !== undefined,
    diff: summary.diff ?? 'kernel',
    changed: summary.changed,
    removed: summary.removed,
    recordDigest: w.record?.digest,
    digest: inputsDigest,
  });
  rememberNode(conf, node, inputsDigest, step === 'write' ? applied : undefined);
  if (step === 'forget') forgetApplied(conf.stateDir, conf.device);
  return { node, summary, applied: step !== 'forget' && applied ? { ...applied, digest: inputsDigest } : undefined };
}

/** `node` with the identity read now; `node` itself while it is the same (its inputs digest stands). */
function withIdentity(node: LocalNode, id: Pick<LocalNode, 'underlay' | 'mac' | 'mtu'>): LocalNode {
  const same = id.mac === node.mac && id.mtu === node.mtu && JSON.stringify(id.underlay) === JSON.stringify(node.underlay);
  return same ? node : { ...node, ...id };
}

async function readKernel(env: Env, conf: Conf, plan: ReconcilePlan, obs: NodeLinks | NodeObservation | undefined): Promise<NodeObservation> {
  const v6 = !!conf.network6;
  if (plan.read === 'node' || !obs) return observeNode(env.exec, conf.device, v6);
  if (plan.read === 'empty') return { ...obs, peers: NO_PEERS };
  if (plan.read === 'peers' || !('peers' in obs)) return { ...obs, peers: await observePeerState(env.exec, conf.device, v6) };
  return obs;
}

/**
 * Concurrent writers on one node reconcile the same device: one may create it (or delete a departed
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
      obs = await observeNode(env.exec, conf.device, !!conf.network6);
    }
  }
}

/**
 * The state file (subnet, lease, identity) and, when the peers on the device are known, the
 * applied record; without them the record stays as it is (a reconcile that changed entries
 * removed it first).
 */
function rememberNode(conf: Conf, node: LocalNode, inputsDigest: string | undefined, applied: Applied | undefined): void {
  const { v4, v6 } = node.subnets;
  const state: NodeState = { ...(v4 ? { subnet: formatCidr(v4) } : {}), ...(v6 ? { subnet6: formatCidr(v6) } : {}), ip: node.underlay.ip, mac: node.mac, ...(node.leaseId ? { leaseId: node.leaseId } : {}) };
  const known = readState(conf.stateDir, conf.device);
  if (!known || JSON.stringify(known) !== JSON.stringify(state)) writeState(conf.stateDir, conf.device, state);
  if (applied) writeApplied(conf.stateDir, conf.device, { ...applied, digest: inputsDigest });
}
