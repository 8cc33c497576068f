import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { toCniError } from '../lib/cni/errors.ts';
import { createLogger, LEVELS, type Level, type Logger } from '../lib/cni/log.ts';
import { processExec } from '../lib/exec.ts';
import type { KeyValue } from '../lib/etcd/client.ts';
import { formatCidr, parseSubnet } from '../lib/net/ip.ts';
import { parseVxlanConf, type Conf } from '../plugins/vxlan/conf.ts';
import { byCreation, etcdClient, etcdPeerInput, releaseLease, subnetsPrefix } from '../plugins/vxlan/etcd-registry.ts';
import { observeLinks, observeNode } from '../plugins/vxlan/kernel.ts';
import { removeMasq } from '../plugins/vxlan/masq.ts';
import { lockDevice } from '../lib/store/file-lock.ts';
import { applyPeerChanges, ensureNode, localIdentity, peersDigest, reconcileNode, rememberNode, type Env, type LocalNode, type Reconciled } from '../plugins/vxlan/node.ts';
import type { PeerInput } from '../plugins/vxlan/peers.ts';
import { localPeers } from '../plugins/vxlan/sources.ts';
import { forgetApplied, readApplied, readState, removeState, sameRecord, type AppliedRecord } from '../plugins/vxlan/state.ts';
import { readConfFile } from './conflist.ts';

export interface VxlanCliIo {
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

export default { run: (_name: string, argv: readonly string[], io: VxlanCliIo) => runVxlanCli(argv, io) };

const USAGE = `Usage:
  tscni vxlan sync --conf FILE [--full | --watch] [--log LEVEL]   reconcile this node's vxlan device and peers
  tscni vxlan teardown --conf FILE                                remove the device, bridge, state and etcd lease

FILE is a CNI network config (.conf, or a .conflist holding a "vxlan" plugin). sync applies the
difference between the peers and those it last applied (kept in the state dir), reading the kernel's
entries only when that record is missing or the device changed; --full always compares with the
kernel, and repairs entries changed behind its back. With --watch, sync keeps reconciling on every
change (etcd watch or peers file), fully at start and every 30 s, and keeps the lease alive.
`;

/** A vxlan plugin config from a .conf or .conflist file, with the list's name and cniVersion. */
export function readVxlanConf(path: string): Conf {
  const list = readConfFile(path);
  const plugin = list.plugins.find((p) => p.type === 'vxlan');
  if (!plugin) throw new Error(`${path} has no plugin of type "vxlan"`);
  return parseVxlanConf({ ...plugin, name: list.name, cniVersion: list.cniVersion });
}

function logLevel(value: string | undefined): Level {
  if (value === undefined) throw new Error('--log needs a level');
  if (!(LEVELS as readonly string[]).includes(value)) throw new Error(`unknown --log level ${JSON.stringify(value)}: use one of ${LEVELS.join(', ')}`);
  return value as Level;
}

function parseArgs(args: readonly string[]): { conf?: string; watch: boolean; full: boolean; level: Level } {
  const out: { conf?: string; watch: boolean; full: boolean; level: Level } = { watch: false, full: false, level: 'info' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--watch') out.watch = true;
    else if (a === '--full') out.full = true;
    else if (a === '--conf') out.conf = args[++i];
    else if (a === '--log') out.level = logLevel(args[++i]);
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  return out;
}

export async function runVxlanCli(args: readonly string[], io: VxlanCliIo): Promise<number> {
  const [verb, ...rest] = args;
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(rest);
    if ((verb !== 'sync' && verb !== 'teardown') || !opts.conf) throw new Error(verb ? 'missing --conf' : 'missing verb');
    if (opts.full && opts.watch) throw new Error('--full and --watch exclude each other (--watch reconciles fully at start and every 30 s)');
  } catch (err) {
    io.writeStderr(`tscni vxlan: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const log = createLogger({ level: opts.level }, { cmd: `vxlan ${verb}` }, io.writeStderr);
  const env: Env = { exec: processExec, log };
  try {
    const conf = readVxlanConf(opts.conf);
    if (verb === 'teardown') return await teardown(env, conf, io);
    if (!opts.watch) {
      const started = performance.now();
      const { node, summary } = await ensureNode(env, conf, { mode: opts.full ? 'full' : 'sync' });
      const ms = Math.round((performance.now() - started) * 100) / 100;
      io.writeStdout(JSON.stringify({ subnet: formatCidr(node.subnet), device: conf.device, mtu: node.mtu, ...summary, ms }) + '\n');
      return 0;
    }
    return await watchLoop(env, conf, log);
  } catch (err) {
    const e = toCniError(err);
    log.error(e.message, { code: e.code, details: e.details });
    return 1;
  }
}

async function teardown(env: Env, conf: Conf, io: VxlanCliIo): Promise<number> {
  const state = readState(conf.stateDir, conf.device);
  if (conf.source.kind === 'etcd' && state) {
    const client = etcdClient(conf.source.etcd);
    try {
      await releaseLease(client, conf.source.etcd, parseSubnet(state.subnet)!, state.ip, state.leaseId);
    } catch (err) {
      env.log.warn('could not release the etcd lease; it expires with its TTL', { error: (err as Error).message });
    } finally {
      client.close();
    }
  }
  // the device's routes, neighbours and FDB entries go with it
  const links = (await observeLinks(env.exec)).links.map((l) => l.ifname);
  const gone = [conf.device, conf.bridge].filter((d) => links.includes(d));
  for (const d of gone) await env.exec.runAsync(['ip', 'link', 'del', d]);
  await removeMasq(env.exec, conf.device);
  removeState(conf.stateDir, conf.device);
  io.writeStdout(JSON.stringify({ removed: gone, state: !!state }) + '\n');
  return 0;
}

const RESYNC_MS = 30_000;

/**
 * Keeps the node reconciled until SIGINT/SIGTERM: on every etcd event (one long-lived watch) or
 * peers-file change, and every 30 s. A cut watch stream resumes after the last event read; a
 * compacted revision or an unreachable etcd ends the session: it re-leases, re-reads and watches
 * again, with backoff; routes stay as they are meanwhile.
 */
async function watchLoop(env: Env, conf: Conf, log: Logger): Promise<number> {
  // the binary keeps code in the interpreter for short plugin calls; a long-running watcher wants the JIT
  (globalThis as { Bun?: { unsafe?: { setJITPolicy?: (policy: number) => void } } }).Bun?.unsafe?.setJITPolicy?.(1);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let node: LocalNode | undefined;
  let current: () => PeerInput[] | undefined = () => undefined;
  // the peers last programmed, as the record says: events apply only their difference; undefined forces a full read
  let applied: AppliedRecord | undefined;
  const serial = serializer(async () => {
    if (!node) return;
    const inputs = current();
    const started = performance.now();
    const lock = await lockDevice(conf.stateDir, conf.device, log);
    try {
      // another writer (an ADD, a one-shot sync) may have changed the entries since: memory is trusted
      // only while the record is still the one written here
      if (applied && !(lock.exclusive && sameRecord(readApplied(conf.stateDir, conf.device, { peers: false }), applied))) {
        log.info('the applied record changed under the watcher; reconciling from the kernel');
        applied = undefined;
      }
      if (!lock.exclusive) forgetApplied(conf.stateDir, conf.device);
      let result: Reconciled | undefined;
      if (applied && inputs) {
        result = await applyPeerChanges(env, conf, node, applied, inputs).catch((err: unknown) => {
          log.warn('applying the change failed; reconciling from the kernel', { error: toCniError(err).message });
          return undefined;
        });
      }
      let used = node;
      if (!result) {
        const obs = await observeNode(env.exec, conf.device);
        used = { ...localIdentity(conf, obs), subnet: node.subnet, leaseId: node.leaseId };
        result = await reconcileNode(env, conf, obs, used, inputs);
      }
      const { summary } = result;
      if (summary.changed || summary.removed || summary.recreated) log.info('reconciled', { ...summary, ms: Math.round((performance.now() - started) * 100) / 100 });
      // an ADD after this finds the inputs applied here and skips its own reconcile
      const digest = inputs && peersDigest(conf, used, inputs);
      const trusted = lock.exclusive && lock.mine();
      applied = trusted && result.applied ? { ...result.applied, digest } : undefined;
      rememberNode(conf, used, digest, applied);
      if (!trusted) forgetApplied(conf.stateDir, conf.device);
    } finally {
      lock.release();
    }
  }, log);
  const tick = setInterval(() => ((applied = undefined), serial()), RESYNC_MS);
  try {
    if (conf.source.kind !== 'etcd') {
      const source = conf.source;
      current = () => {
        const read = localPeers(source);
        if ('error' in read) log.error('peers left unchanged', { reason: read.error });
        return 'error' in read ? undefined : read.inputs;
      };
      ({ node, applied } = await ensureNode(env, conf));
      log.info('synced', { device: conf.device });
      const watcher = source.kind === 'file' ? watchFile(source.path, () => serial()) : undefined;
      await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
      watcher?.close();
      return 0;
    }
    const etcd = conf.source.etcd;
    const client = etcdClient(etcd);
    const prefix = subnetsPrefix(etcd);
    let backoff = 500;
    while (!stop.signal.aborted) {
      let keepalive: NodeJS.Timeout | undefined;
      // a session ends with the watch stream, or when our lease is gone (then it re-leases)
      const session = new AbortController();
      const endSession = () => session.abort();
      stop.signal.addEventListener('abort', endSession, { once: true });
      try {
        ({ node, applied } = await ensureNode(env, conf, { client }));
        const snapshot = await client.rangePrefix(prefix);
        // each entry is turned into a peer input once, when it arrives: an event changes one of 1,000
        const entries = new Map<string, { kv: KeyValue; input: PeerInput }>();
        const keep = (kv: KeyValue) => entries.set(kv.key, { kv, input: etcdPeerInput(etcd, kv, conf.vni) });
        snapshot.kvs.forEach(keep);
        current = () => [...entries.values()].sort((a, b) => byCreation(a.kv, b.kv)).map((e) => e.input);
        await serial(); // anything that changed between the lease and the snapshot
        log.info('watching etcd', { prefix, revision: snapshot.revision });
        backoff = 500;
        const leaseId = node.leaseId;
        keepalive = setInterval(() => {
          if (!leaseId) return;
          client.keepAlive(leaseId).then(
            (alive) => alive || (log.warn('etcd lease lost; leasing again'), session.abort()),
            (err) => log.warn('keepalive failed', { error: (err as Error).message }),
          );
        }, Math.min(RESYNC_MS, (etcd.leaseTTL * 1000) / 3));
        await client.watchPrefix(
          prefix,
          snapshot.revision + 1,
          (events) => {
            for (const e of events) {
              if (e.type === 'DELETE') entries.delete(e.kv.key);
              else keep(e.kv);
            }
            serial();
          },
          { signal: session.signal, onResume: (reason, fromRevision) => log.warn('etcd watch interrupted; resuming', { reason, fromRevision }) },
        );
      } catch (err) {
        if (stop.signal.aborted) break;
        log.warn('etcd session failed; retrying', { error: toCniError(err).message, inMs: backoff });
      } finally {
        clearInterval(keepalive);
        stop.signal.removeEventListener('abort', endSession);
      }
      await sleep(backoff, stop.signal);
      backoff = Math.min(backoff * 2, 5000);
    }
    client.close();
    return 0;
  } finally {
    clearInterval(tick);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
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

/** Watches the file's directory: editors and `mv` replace files, which a watch on the file itself misses. */
function watchFile(path: string, onChange: () => void): FSWatcher {
  const name = basename(path);
  return watch(dirname(path), (_event, file) => {
    if (file === null || file === name) onChange();
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
