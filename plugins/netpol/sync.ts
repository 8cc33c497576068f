import { mkdirSync, watch as fsWatch } from 'node:fs';
import { join } from 'node:path';
import type { Exec } from '../../lib/exec.ts';
import type { Logger } from '../../lib/cni/log.ts';
import { nftApply } from '../../lib/netfilter/nft.ts';
import { loadCluster, withObject, type Cluster } from '../../lib/netpol/cluster.ts';
import { compileWithIndex } from '../../lib/netpol/compile.ts';
import { diffRuleset } from '../../lib/netpol/diff.ts';
import { prefixOf, withElements, withGuard } from '../../lib/netpol/guard.ts';
import { membershipMatcher, type MemberPod } from '../../lib/netpol/membership.ts';
import { renderRuleset } from '../../lib/netpol/render.ts';
import type { Ruleset } from '../../lib/netpol/ruleset.ts';
import { lockDevice } from '../../lib/store/file-lock.ts';
import type { Netpol } from './conf.ts';
import { tablePresent } from './kernel.ts';
import { directorySource, type PolicySource } from './source-dir.ts';
import { listRegistrations, LOCK_NAME, readApplied, writeApplied, writeIndex, type IndexedPod, type Registration } from './state.ts';

/**
 * sync: the source and this node's registrations → compile → the difference from what was applied
 * → one `nft -f` → applied.json and index.json. The public node API of the netpol plugin, used by
 * its ADD when the index is stale or missing (no watcher running) and by `tscni policy`.
 *
 * Public surface:
 *   interface SyncEnv { exec, log }
 *   syncOnce(conf, env, { full? }): SyncSummary      under the state dir's lock
 *   syncLocked(conf, env, { full? }): SyncSummary    the same, for a caller holding the lock (ADD)
 *   watch(conf, env, signal): Promise<void>          syncs at start and on every source or registration change
 *   readCluster(conf): ClusterView                   the objects as sync sees them (local pods bound to their registered addresses)
 *
 * Local pods: a registration's addresses replace the Pod object's `status.podIPs` and make it
 * local; a registration whose pod the source does not hold uses `args.cni.labels`, else it is
 * "unknown" and fails closed (membership.ts). A bad object is rejected alone (logged by the caller).
 */
export interface SyncEnv {
  exec: Exec;
  log: Logger;
}

export interface SyncSummary {
  policies: number;
  pods: number;
  localPods: number;
  rejected: string[];
  warnings: string[];
  /** 'none' (nothing changed), 'diff' or 'full' (the table replaced). */
  applied: 'none' | 'diff' | 'full';
  ms: number;
  /** Where `ms` went (ms): reading and validating the source, compiling, the diff and its nft transaction, the state files. */
  phases: { read: number; compile: number; apply: number; write: number };
}

export interface ClusterView {
  cluster: Cluster;
  /** Local pods known only by their registration, without labels from anywhere: isolated. */
  unknown: Registration[];
  /** Local pods known by registration with args.cni.labels only and no name: judged by those. */
  unnamed: Registration[];
  registrations: Registration[];
  rejected: string[];
  warnings: string[];
  stamp: string;
}

export const sourceOf = (conf: Netpol): PolicySource => directorySource(conf.objects);

export function readCluster(conf: Netpol, source: PolicySource = sourceOf(conf)): ClusterView {
  const stamp = source.stamp(); // before reading: a change during the read makes the next ADD resync
  const read = source.read();
  const loaded = loadCluster(read.objects);
  let cluster = loaded.cluster;
  const registrations = listRegistrations(conf.stateDir);
  const unknown: Registration[] = [];
  const unnamed: Registration[] = [];
  for (const r of registrations) {
    const ips = addressesOf(r);
    const pod = r.name ? cluster.pods.get(`${r.namespace}/${r.name}`) : undefined;
    if (pod) cluster = withObject(cluster, { ...pod, nodeName: conf.nodeName, ips });
    else if (r.name && r.argLabels) cluster = withObject(cluster, { kind: 'Pod', namespace: r.namespace, name: r.name, labels: r.argLabels, nodeName: conf.nodeName, hostNetwork: false, ports: [], ips });
    else if (r.argLabels) unnamed.push(r);
    else unknown.push(r);
  }
  return { cluster, unknown, unnamed, registrations, rejected: [...read.errors, ...loaded.rejected], warnings: loaded.warnings, stamp };
}

export async function syncOnce(conf: Netpol, env: SyncEnv, opts: { full?: boolean } = {}): Promise<SyncSummary> {
  const lock = await lockDevice(conf.stateDir, LOCK_NAME, env.log);
  try {
    return await syncLocked(conf, env, { full: opts.full || !lock.exclusive });
  } finally {
    lock.release();
  }
}

export async function syncLocked(conf: Netpol, env: SyncEnv, opts: { full?: boolean } = {}): Promise<SyncSummary> {
  const started = performance.now();
  const lap = lapTimer();
  const view = readCluster(conf);
  const read = lap();
  const { ruleset, index } = desired(conf, view);
  const compiled = lap();
  const prev = opts.full ? undefined : readApplied(conf.stateDir);
  const applied = await applyRuleset(env, prev, ruleset);
  const apply = lap();
  writeApplied(conf.stateDir, ruleset);
  const pods: Record<string, IndexedPod> = {};
  for (const [key, p] of view.cluster.pods) pods[key] = { labels: p.labels, ports: p.ports, hostNetwork: p.hostNetwork };
  writeIndex(conf.stateDir, { version: 1, stamp: view.stamp, membership: index, pods });
  const localPods = [...view.cluster.pods.values()].filter((p) => p.nodeName === conf.nodeName).length + view.unknown.length + view.unnamed.length;
  return {
    policies: view.cluster.policies.size,
    pods: view.cluster.pods.size,
    localPods,
    rejected: view.rejected,
    warnings: view.warnings,
    applied,
    ms: round(performance.now() - started),
    phases: { read, compile: compiled, apply, write: lap() },
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** Each call: the milliseconds since the previous one. */
function lapTimer(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const ms = round(now - last);
    last = now;
    return ms;
  };
}

/** The ruleset for this node: compiled, plus pods known only by registration, plus the guard. */
function desired(conf: Netpol, view: ClusterView): ReturnType<typeof compileWithIndex> {
  const { ruleset, index } = compileWithIndex(view.cluster, conf.nodeName);
  const elementsOf = membershipMatcher(index);
  const extra = [...view.unknown, ...view.unnamed].flatMap((r) => elementsOf(registrationMember(r)));
  const localIps = [...view.cluster.pods.values()].filter((p) => p.nodeName === conf.nodeName && !p.hostNetwork).flatMap((p) => p.ips);
  const registered = [...localIps, ...[...view.unknown, ...view.unnamed].flatMap(addressesOf)];
  const guarded = [...conf.podSubnets, ...view.registrations.flatMap((r) => r.ips.flatMap((ip) => prefixOf(ip) ?? []))];
  return { ruleset: withGuard(withElements(ruleset, extra), { guarded, registered }), index };
}

export const registrationMember = (r: Registration): MemberPod => ({ namespace: r.namespace, labels: r.argLabels, ips: addressesOf(r), hostNetwork: false, ports: [], local: true });
export const addressesOf = (r: Pick<Registration, 'ips'>): string[] => r.ips.map((ip) => ip.split('/')[0]!);

/**
 * The diff from what was applied; a diff the kernel refuses (it did not hold `prev`: every line
 * names our table, so a missing table fails it too) becomes the full render. Only an empty diff
 * asks whether the table is there: `nft list` fetches the whole ruleset first (~0.1-0.6 s with the
 * issue's 200 policies), so it is not asked on every sync.
 */
async function applyRuleset(env: SyncEnv, prev: Ruleset | undefined, next: Ruleset): Promise<SyncSummary['applied']> {
  const script = diffRuleset(prev, next);
  if (!prev) {
    await nftApply(env.exec, script);
    return 'full';
  }
  if (script === '') {
    if (await tablePresent(env.exec)) return 'none';
    await nftApply(env.exec, renderRuleset(next));
    return 'full';
  }
  try {
    await nftApply(env.exec, script);
    return 'diff';
  } catch (err) {
    env.log.warn('the kernel did not hold the applied ruleset; replacing the table', { error: (err as Error).message.split('\n')[0] });
    await nftApply(env.exec, renderRuleset(next));
    return 'full';
  }
}

/**
 * Syncs at start, then on every change of the objects directory or of the registrations (an ADD
 * or DEL elsewhere), debounced by 50 ms, one at a time, until `signal` aborts. Each rejected
 * object is logged once, not on every sync.
 */
export async function watch(conf: Netpol, env: SyncEnv, signal: AbortSignal): Promise<void> {
  const seen = new Set<string>();
  let running: Promise<void> | undefined;
  let again = false;
  const once = async () => {
    try {
      const s = await syncOnce(conf, env);
      for (const line of [...s.rejected, ...s.warnings]) {
        if (!seen.has(line)) env.log.warn('object skipped or weakened', { reason: line });
        seen.add(line);
      }
      if (s.applied !== 'none') env.log.info('synced', { policies: s.policies, pods: s.pods, applied: s.applied, ms: s.ms });
    } catch (err) {
      env.log.error('sync failed; the kernel keeps what it had', { error: (err as Error).message });
    }
  };
  const run = () => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await once();
      } while (again);
      running = undefined;
    })();
  };
  let timer: NodeJS.Timeout | undefined;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 50);
  };
  await once();
  const podsDir = join(conf.stateDir, 'pods');
  mkdirSync(podsDir, { recursive: true, mode: 0o700 });
  const pods = fsWatch(podsDir, soon);
  const closers = [sourceOf(conf).watch(soon), { close: () => pods.close() }];
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  clearTimeout(timer);
  for (const c of closers) c.close();
  await running;
}
