import { toCniError } from '../lib/cni/errors.ts';
import { createLogger, LEVELS, type Level } from '../lib/cni/log.ts';
import { processExec } from '../lib/exec.ts';
import { parseVxlanConf, reconcileOnce, teardown, watch, type Conf, type NodeEnv } from '../plugins/vxlan/node-api.ts';
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
  const env: NodeEnv = { exec: processExec, log };
  try {
    const conf = readVxlanConf(opts.conf);
    if (verb === 'teardown') {
      io.writeStdout(JSON.stringify(await teardown(env, conf)) + '\n');
      return 0;
    }
    if (opts.watch) {
      await watchUntilSignal(env, conf);
      return 0;
    }
    const started = performance.now();
    const report = await reconcileOnce(env, conf, { full: opts.full });
    const ms = Math.round((performance.now() - started) * 100) / 100;
    io.writeStdout(JSON.stringify({ ...report, ms }) + '\n');
    return 0;
  } catch (err) {
    const e = toCniError(err);
    log.error(e.message, { code: e.code, details: e.details });
    return 1;
  }
}

/** `sync --watch` runs until SIGINT or SIGTERM. */
async function watchUntilSignal(env: NodeEnv, conf: Conf): Promise<void> {
  // the binary keeps code in the interpreter for short plugin calls; a long-running watcher wants the JIT
  (globalThis as { Bun?: { unsafe?: { setJITPolicy?: (policy: number) => void } } }).Bun?.unsafe?.setJITPolicy?.(1);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await watch(env, conf, stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
