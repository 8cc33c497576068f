import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { toCniError } from '../../lib/cni/errors.ts';
import type { Logger } from '../../lib/cni/log.ts';
import type { EtcdClient, KeyValue } from '../../lib/etcd/client.ts';
import type { Conf, EtcdConf, PeerSource } from './conf.ts';
import { byCreation, etcdClient, etcdPeerInput, subnetsPrefix } from './etcd-registry.ts';
import type { Env, LocalNode } from './node.ts';
import type { PeerInput } from './peers.ts';
import { localPeers } from './sources.ts';
import type { AppliedRecord } from './state.ts';
import { ensureNode, reconcileAsWatcher } from './writer.ts';

const RESYNC_MS = 30_000;

/**
 * Keeps the node reconciled until `signal` aborts: on every etcd event (one long-lived watch) or
 * peers-file change, and every 30 s. A cut watch stream resumes after the last event read; a
 * compacted revision or an unreachable etcd ends the session: it re-leases, re-reads and watches
 * again, with backoff; routes stay as they are meanwhile.
 */
export async function watchNode(env: Env, conf: Conf, signal: AbortSignal): Promise<void> {
  const keeper = nodeKeeper(env, conf);
  const tick = setInterval(() => keeper.resync(), RESYNC_MS);
  try {
    if (conf.source.kind === 'etcd') await watchEtcd(env, conf, conf.source.etcd, keeper, signal);
    else await watchLocal(env, conf, conf.source, keeper, signal);
  } finally {
    clearInterval(tick);
  }
}

/** The node as the watcher keeps it between reconciles. */
interface Keeper {
  /** A full reconcile (lease included) through `ensureNode`: at start and at each etcd session. */
  start(client?: EtcdClient): Promise<LocalNode>;
  /** Where the inputs of the next reconciles come from (undefined: the source cannot be read now). */
  follow(inputs: () => PeerInput[] | undefined): void;
  /** Reconciles one at a time; calls while one runs fold into one more after it. */
  reconcile(): Promise<void>;
  /** Forgets the record held in memory and reconciles: from the kernel, repairing what changed behind our back. */
  resync(): void;
}

function nodeKeeper(env: Env, conf: Conf): Keeper {
  let node: LocalNode | undefined;
  // the peers last programmed, as the record says: events apply only their difference; undefined reads the kernel
  let memory: AppliedRecord | undefined;
  let current: () => PeerInput[] | undefined = () => undefined;
  const reconcile = serializer(async () => {
    if (!node) return;
    const started = performance.now();
    const out = await reconcileAsWatcher(env, conf, node, memory, current());
    ({ node, applied: memory } = out);
    const { summary } = out;
    if (summary.changed || summary.removed || summary.recreated) env.log.info('reconciled', { ...summary, ms: Math.round((performance.now() - started) * 100) / 100 });
  }, env.log);
  return {
    async start(client) {
      ({ node, applied: memory } = await ensureNode(env, conf, client ? { client } : {}));
      return node;
    },
    follow: (inputs) => void (current = inputs),
    reconcile,
    resync: () => ((memory = undefined), void reconcile()),
  };
}

/** An inline list or a peers file: one full reconcile, then one on every change of the file. */
async function watchLocal(env: Env, conf: Conf, source: Exclude<PeerSource, { kind: 'etcd' }>, keeper: Keeper, signal: AbortSignal): Promise<void> {
  keeper.follow(() => {
    const read = localPeers(source);
    if ('error' in read) env.log.error('peers left unchanged', { reason: read.error });
    return 'error' in read ? undefined : read.inputs;
  });
  await keeper.start();
  env.log.info('synced', { device: conf.device });
  const watcher = source.kind === 'file' ? watchFile(source.path, () => void keeper.reconcile()) : undefined;
  try {
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  } finally {
    watcher?.close();
  }
}

/** Watches the file's directory: editors and `mv` replace files, which a watch on the file itself misses. */
function watchFile(path: string, onChange: () => void): FSWatcher {
  const name = basename(path);
  return watch(dirname(path), (_event, file) => {
    if (file === null || file === name) onChange();
  });
}

/** etcd sessions one after another until `stop` aborts, with backoff after a failed one. */
async function watchEtcd(env: Env, conf: Conf, etcd: EtcdConf, keeper: Keeper, stop: AbortSignal): Promise<void> {
  const client = etcdClient(etcd);
  try {
    let backoff = 500;
    while (!stop.aborted) {
      try {
        await etcdSession(env, conf, etcd, client, keeper, stop, () => (backoff = 500));
      } catch (err) {
        if (stop.aborted) break;
        env.log.warn('etcd session failed; retrying', { error: toCniError(err).message, inMs: backoff });
      }
      await sleep(backoff, stop);
      backoff = Math.min(backoff * 2, 5000);
    }
  } finally {
    client.close();
  }
}

/**
 * One session: lease and reconcile fully, read the registry, then follow it from that revision.
 * It ends with the watch stream (the watch raises a compacted revision or a cancelled watch), or
 * when our lease is gone (then the next session leases again).
 */
async function etcdSession(env: Env, conf: Conf, etcd: EtcdConf, client: EtcdClient, keeper: Keeper, stop: AbortSignal, onWatching: () => void): Promise<void> {
  const session = new AbortController();
  const endSession = () => session.abort();
  stop.addEventListener('abort', endSession, { once: true });
  let keepalive: NodeJS.Timeout | undefined;
  try {
    const node = await keeper.start(client);
    const prefix = subnetsPrefix(etcd);
    const snapshot = await client.rangePrefix(prefix);
    const entries = registryEntries(etcd, conf.vni);
    snapshot.kvs.forEach(entries.put);
    keeper.follow(entries.inputs);
    await keeper.reconcile(); // anything that changed between the lease and the snapshot
    env.log.info('watching etcd', { prefix, revision: snapshot.revision });
    onWatching();
    keepalive = keepLeaseAlive(env.log, client, node.leaseId, Math.min(RESYNC_MS, (etcd.leaseTTL * 1000) / 3), session);
    await client.watchPrefix(
      prefix,
      snapshot.revision + 1,
      (events) => {
        for (const e of events) {
          if (e.type === 'DELETE') entries.delete(e.kv.key);
          else entries.put(e.kv);
        }
        void keeper.reconcile();
      },
      { signal: session.signal, onResume: (reason, fromRevision) => env.log.warn('etcd watch interrupted; resuming', { reason, fromRevision }) },
    );
  } finally {
    clearInterval(keepalive);
    stop.removeEventListener('abort', endSession);
  }
}

/** The registry as peer inputs; each entry is turned into one once, when it arrives: an event changes one of 1,000. */
function registryEntries(etcd: EtcdConf, vni: number) {
  const entries = new Map<string, { kv: KeyValue; input: PeerInput }>();
  return {
    put: (kv: KeyValue) => void entries.set(kv.key, { kv, input: etcdPeerInput(etcd, kv, vni) }),
    delete: (key: string) => void entries.delete(key),
    inputs: () => [...entries.values()].sort((a, b) => byCreation(a.kv, b.kv)).map((e) => e.input),
  };
}

/** Refreshes the lease every `everyMs`; a lease that is gone ends the session. */
function keepLeaseAlive(log: Logger, client: EtcdClient, leaseId: string | undefined, everyMs: number, session: AbortController): NodeJS.Timeout {
  return setInterval(() => {
    if (!leaseId) return;
    client.keepAlive(leaseId).then(
      (alive) => alive || (log.warn('etcd lease lost; leasing again'), session.abort()),
      (err) => log.warn('keepalive failed', { error: (err as Error).message }),
    );
  }, everyMs);
}

/** Runs `work` one at a time; calls while it runs fold into one more run after it. */
function serializer(work: () => Promise<void>, log: Logger): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await work();
        } catch (err) {
          log.error('reconcile failed', { error: toCniError(err).message });
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = undefined;
    }
  };
  return run;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
