import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import { parseIp, type Family } from '../../lib/net/ip.ts';
import { nftApply } from '../../lib/netfilter/nft.ts';
import { renderElementAdds, renderElementDeletes } from '../../lib/netpol/diff.ts';
import { elementsOfAddresses, guardedElements, patchElements, prefixOf } from '../../lib/netpol/guard.ts';
import { podElements, type MemberPod } from '../../lib/netpol/membership.ts';
import { guardedSet, isolationMap, registeredSet, type ElementChange, type Ruleset } from '../../lib/netpol/ruleset.ts';
import { lockDevice } from '../../lib/store/file-lock.ts';
import { resolveNetpol, type Netpol } from './conf.ts';
import { bridgeNetfilterOff, flushConntrack, kernelElements } from './kernel.ts';
import {
  listRegistrations,
  LOCK_NAME,
  readApplied,
  readIndex,
  readRegistration,
  removeRegistration,
  sourceStamp,
  writeApplied,
  writeRegistration,
  type NetpolIndex,
  type Registration,
} from './state.ts';

/**
 * netpol: Kubernetes NetworkPolicy for the pods of a chain (after bridge or vxlan), enforced by
 * table `inet tscni_policy` (lib/netpol). ADD registers the pod and puts it into its policy sets
 * and the guard's `registered` set in ONE transaction before returning, so its first packet is
 * judged; it reads the index sync wrote (sync.ts), never the source — unless the index is missing
 * or older than the objects, then it syncs first (no watcher running). State: state.ts.
 *
 * Public surface (bridge, and vxlan through it, run these in-process when their config has a
 * `policy` key: the registration then precedes the pod's interface):
 *   registerPod(ctx, conf, ips)     ADD without prevResult: `ips` as `address/prefix`
 *   unregisterPod(ctx, conf)        DEL (idempotent)
 *   checkPod(ctx, conf)             CHECK
 *   gcPods(ctx, conf, valid)        GC: registrations of conf.network not in `valid`
 *   policyStatus(conf)              STATUS
 */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The pod's identity from CNI_ARGS; without Kubernetes, namespace "default" and no name. */
function registrationOf(ctx: PluginContext, conf: Netpol, ips: string[]): Registration {
  const args = ctx.cniArgs([]);
  const namespace = args.K8S_POD_NAMESPACE || 'default';
  const name = args.K8S_POD_NAME || undefined;
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) throw new CniError(ErrorCode.invalidEnvironment, `CNI_ARGS: K8S_POD_NAMESPACE ${JSON.stringify(namespace)} is not a namespace name`);
  if (name !== undefined && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) throw new CniError(ErrorCode.invalidEnvironment, `CNI_ARGS: K8S_POD_NAME ${JSON.stringify(name)} is not a pod name`);
  return { network: conf.network, containerId: ctx.containerId, ifname: ctx.ifname, namespace, ...(name ? { name } : {}), ips, ...(conf.argLabels ? { argLabels: conf.argLabels } : {}) };
}

/** Labels: the source's Pod object (via the index), else args.cni.labels, else unknown (fail closed). */
function memberOf(index: NetpolIndex, r: Registration): MemberPod {
  const known = r.name ? index.pods[`${r.namespace}/${r.name}`] : undefined;
  return {
    namespace: r.namespace,
    labels: known?.labels ?? r.argLabels,
    ips: addresses(r),
    hostNetwork: false,
    ports: known?.ports ?? [],
    local: true,
  };
}

const addresses = (r: Pick<Registration, 'ips'>) => r.ips.map((ip) => ip.split('/')[0]!);
const familyOf = (ip: string): Family => parseIp(ip)!.family;
const key = (e: ElementChange) => `${e.set} ${e.element}`;
const ISOLATION = new Set((['ingress', 'egress'] as const).flatMap((d) => ([4, 6] as const).map((f) => isolationMap(d, f))));

/** Everything the pod puts in the table: its policy memberships and `registered`. */
function wantedElements(index: NetpolIndex, r: Registration): ElementChange[] {
  return [...podElements(index.membership, memberOf(index, r)), ...addresses(r).map((ip) => ({ set: registeredSet(familyOf(ip)), element: ip }))];
}

/** The guarded set's changes when the pod's prefixes join it (elements nested in another are merged). */
function guardChanges(applied: Ruleset, r: Registration): { adds: ElementChange[]; deletes: ElementChange[] } {
  const current = applied.sets.filter((s) => s.name === guardedSet(4) || s.name === guardedSet(6)).flatMap((s) => s.elements.map((element) => ({ set: s.name, element })));
  const next = guardedElements([...current.map((e) => e.element), ...r.ips.flatMap((ip) => prefixOf(ip) ?? [])]);
  const had = new Set(current.map(key));
  const has = new Set(next.map(key));
  return { adds: next.filter((e) => !had.has(key(e))), deletes: current.filter((e) => !has.has(key(e))) };
}

/** Applies element changes as one transaction and records them; a kernel that disagrees with the record gets a full sync. */
async function applyElements(ctx: PluginContext, conf: Netpol, applied: Ruleset, adds: ElementChange[], deletes: ElementChange[]): Promise<void> {
  try {
    await nftApply(ctx.exec, renderElementDeletes(deletes) + renderElementAdds(adds));
    writeApplied(conf.stateDir, patchElements(applied, adds, deletes));
  } catch (err) {
    ctx.log.warn('element update refused; syncing in full', { error: (err as Error).message.split('\n')[0] });
    const { syncLocked } = await import('./sync.ts');
    await syncLocked(conf, ctx, { full: true });
  }
}

/** The index and applied ruleset, synced first when missing or older than the objects. */
async function freshState(ctx: PluginContext, conf: Netpol): Promise<{ index: NetpolIndex; applied: Ruleset }> {
  let index = readIndex(conf.stateDir);
  let applied = readApplied(conf.stateDir);
  if (!index || !applied || index.stamp !== sourceStamp(conf.objects)) {
    const { syncLocked } = await import('./sync.ts');
    const s = await syncLocked(conf, ctx);
    for (const reason of s.rejected) ctx.log.warn('object rejected', { reason });
    index = readIndex(conf.stateDir);
    applied = readApplied(conf.stateDir);
    if (!index || !applied) throw new CniError(ErrorCode.ioFailure, `netpol: sync wrote no index in ${conf.stateDir}`);
  }
  return { index, applied };
}

/** Removes registrations and their elements (DEL, GC); an address another registration holds now stays. */
async function unregister(ctx: PluginContext, conf: Netpol, gone: readonly Registration[]): Promise<void> {
  if (gone.length === 0) return;
  const goneIds = new Set(gone.map((r) => `${r.containerId}/${r.ifname}`));
  const kept = new Set(listRegistrations(conf.stateDir).filter((r) => !goneIds.has(`${r.containerId}/${r.ifname}`)).flatMap(addresses));
  const applied = readApplied(conf.stateDir);
  const deletes = applied ? elementsOfAddresses(applied, gone.flatMap(addresses).filter((ip) => !kept.has(ip))) : [];
  if (applied && deletes.length) await applyElements(ctx, conf, applied, [], deletes);
  for (const r of gone) removeRegistration(conf.stateDir, r.containerId, r.ifname);
}

async function withLock<T>(ctx: PluginContext, conf: Netpol, work: () => Promise<T>): Promise<T> {
  const lock = await lockDevice(conf.stateDir, LOCK_NAME, ctx.log);
  try {
    return await work();
  } finally {
    lock.release();
  }
}

/** Registers the pod's addresses and puts it in its sets and `registered`, all before returning. */
export async function registerPod(ctx: PluginContext, conf: Netpol, ips: readonly string[]): Promise<void> {
  const reg = registrationOf(ctx, conf, [...ips]);
  if (reg.ips.length === 0) return;
  await using undo = ctx.undo();
  const lock = await lockDevice(conf.stateDir, LOCK_NAME, ctx.log);
  try {
    writeRegistration(conf.stateDir, reg);
    undo.push('remove registration', () => withLock(ctx, conf, () => unregister(ctx, conf, [reg])));
    const { index, applied } = await freshState(ctx, conf);
    const wanted = wantedElements(index, reg);
    const off = wanted.some((e) => ISOLATION.has(e.set)) ? bridgeNetfilterOff(addresses(reg).map(familyOf)) : [];
    if (off.length) throw new CniError(ErrorCode.pluginNotAvailable, `netpol: a policy isolates this pod but ${off.join(', ')} is off`, 'bridged traffic would bypass the policy; set it to 1 (br_netfilter)');
    const held = elementsOfAddresses(applied, addresses(reg));
    const have = new Set(held.map(key));
    const want = new Set(wanted.map(key));
    const guard = guardChanges(applied, reg);
    const adds = [...wanted.filter((e) => !have.has(key(e))), ...guard.adds];
    const deletes = [...held.filter((e) => !want.has(key(e))), ...guard.deletes];
    // Flush first: until the transaction registers the pod, the guard drops its packets, so no
    // entry of a previous owner's flow survives into the pod's life. An address some registration
    // still held was not guarded: flush again once the pod's own sets judge it.
    const heldBefore = [...have].some((e) => e.startsWith(`${registeredSet(4)} `) || e.startsWith(`${registeredSet(6)} `));
    await flushConntrack(ctx.exec, ctx.log, addresses(reg));
    await applyElements(ctx, conf, applied, adds, deletes);
    if (heldBefore) await flushConntrack(ctx.exec, ctx.log, addresses(reg));
  } finally {
    lock.release();
  }
  undo.commit();
}

export async function unregisterPod(ctx: PluginContext, conf: Netpol): Promise<void> {
  const reg = readRegistration(conf.stateDir, ctx.containerId, ctx.ifname);
  if (!reg) return;
  await withLock(ctx, conf, () => unregister(ctx, conf, [reg]));
}

export async function checkPod(ctx: PluginContext, conf: Netpol): Promise<void> {
  const reg = readRegistration(conf.stateDir, ctx.containerId, ctx.ifname);
  if (!reg) throw new CniError(ErrorCode.internal, `netpol: ${ctx.containerId}/${ctx.ifname} is not registered`);
  const index = readIndex(conf.stateDir);
  if (!index) throw new CniError(ErrorCode.internal, `netpol: no index in ${conf.stateDir} (run tscni policy sync)`);
  const kernel = await kernelElements(ctx.exec);
  if (!kernel) throw new CniError(ErrorCode.internal, 'netpol: table inet tscni_policy is missing');
  const missing = wantedElements(index, reg).filter((e) => !kernel.get(e.set)?.has(e.element));
  if (missing.length) throw new CniError(ErrorCode.internal, `netpol: set ${missing[0]!.set} lacks ${missing[0]!.element}`, missing.map((e) => `${e.set}: ${e.element}`).join('; '));
}

export async function gcPods(ctx: PluginContext, conf: Netpol, valid: readonly { containerID: string; ifname: string }[]): Promise<void> {
  const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
  await withLock(ctx, conf, () => unregister(ctx, conf, listRegistrations(conf.stateDir).filter((r) => r.network === conf.network && !keep.has(`${r.containerId}/${r.ifname}`))));
}

export function policyStatus(conf: Netpol): void {
  if (sourceStamp(conf.objects) === 'unreadable') throw new CniError(ErrorCode.pluginNotAvailable, `netpol: objects directory ${conf.objects} cannot be read`);
  const off = bridgeNetfilterOff([4, 6]);
  if (off.length) throw new CniError(ErrorCode.pluginNotAvailable, `netpol: ${off.join(', ')} is off: bridged pod traffic would bypass NetworkPolicy`, 'set it to 1 (br_netfilter)');
}

export default definePlugin({
  name: 'netpol',
  summary: 'enforces Kubernetes NetworkPolicy for the chain\'s pods (nftables table inet tscni_policy)',
  validate: (conf) => void resolveNetpol(conf),

  async add(ctx) {
    const conf = resolveNetpol(ctx.conf);
    const prev = ctx.prevResult;
    if (!prev) throw new CniError(ErrorCode.invalidConfig, 'Required prevResult missing', 'netpol runs chained after the plugin that gives the pod its addresses (bridge, vxlan)');
    await registerPod(ctx, conf, (prev.ips ?? []).map((ip) => ip.address));
    return prev;
  },
  del: (ctx) => unregisterPod(ctx, resolveNetpol(ctx.conf)),
  check: (ctx) => checkPod(ctx, resolveNetpol(ctx.conf)),
  gc: (ctx) => {
    const conf = resolveNetpol(ctx.conf);
    return gcPods(ctx, conf, conf.validAttachments ?? []);
  },
  status: async (ctx) => policyStatus(resolveNetpol(ctx.conf)),
});
