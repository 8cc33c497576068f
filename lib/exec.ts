import type * as ChildProcess from 'node:child_process';

/** What a finished process left: its argv, exit status and output. */
export interface ProcessOutput {
  argv: readonly string[];
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A process that failed, as one value a human can read: argv, exit code, stderr and cause. */
export class ProcessError extends Error {
  readonly argv: readonly string[];
  readonly status: number | null;
  readonly stderr: string;
  readonly stdout: string;
  /** The process never ran (ENOENT, EACCES): `allowFailure` covers a process that ran and failed, not this. */
  readonly notStarted: boolean;

  constructor(out: ProcessOutput, cause?: unknown, notStarted = false) {
    const how = out.signal ? `killed by ${out.signal}` : `exit ${out.status}`;
    const said = out.stderr.trim().split('\n').slice(-3).join(' | ');
    super(`${out.argv.join(' ')}: ${how}${said ? `: ${said}` : ''}`, { cause });
    this.name = 'ProcessError';
    this.argv = out.argv;
    this.status = out.status;
    this.stderr = out.stderr;
    this.stdout = out.stdout;
    this.notStarted = notStarted;
  }
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  /** Return a failed process's output instead of throwing. A process that cannot be started still throws (`notStarted`). */
  allowFailure?: boolean;
  /** Pass the child's stderr straight to ours (delegated plugins). */
  inheritStderr?: boolean;
  /**
   * The child may run for as long as it likes (a delegated plugin): make the kernel kill it when we
   * die (see spawnArgv). Tools given their whole input at spawn need not.
   */
  killWithParent?: boolean;
}

/** Spawns processes. Injected so tests can count and observe spawns. */
export interface Exec {
  runAsync(argv: readonly string[], options?: RunOptions): Promise<ProcessOutput>;
  /**
   * Kills every child still running and resolves once each has exited; later spawns fail (the
   * process is about to exit). The core calls it before writing its answer, so no process of ours
   * outlives the plugin, and none acts after the undo that should have followed it.
   */
  endChildren?(): Promise<void>;
}

/** A running child, as endChildren needs it. */
interface LiveChild {
  kill(): void;
  exited: Promise<unknown>;
}
const live = new Set<LiveChild>();
let ended = false;

function track(child: LiveChild): void {
  live.add(child);
  void child.exited.finally(() => live.delete(child));
}

async function endChildren(): Promise<void> {
  ended = true;
  const running = [...live];
  for (const child of running) child.kill();
  await Promise.allSettled(running.map((c) => c.exited));
}

const endedError = (argv: readonly string[]) => new Error(`not starting ${argv[0]}: the plugin has answered and is exiting`);

/**
 * A child that may block runs under `setpriv --pdeathsig KILL`: a runtime's timeout SIGKILLs the
 * plugin (no handler can run), and PR_SET_PDEATHSIG makes the kernel kill the child with it. Bun's
 * spawn has no pre-exec hook to call prctl itself; the flag survives the exec into the real program.
 * It costs an exec (~3 ms of CPU here), so the short tools that get their whole input at spawn (ip,
 * tc, nft, bridge, conntrack) run without it: they end by themselves within milliseconds.
 * setpriv reports a program it cannot start as exit 127 "failed to execute": that is `notStarted`.
 */
const SETPRIV = '/usr/bin/setpriv';
let setpriv: boolean | undefined;
function spawnArgv(argv: readonly string[], options: RunOptions | undefined): string[] {
  if (!options?.killWithParent) return [...argv];
  setpriv ??= process.getBuiltinModule('node:fs').existsSync(SETPRIV);
  return setpriv ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : [...argv];
}

const notExecuted = (out: ProcessOutput, options: RunOptions | undefined) =>
  options?.killWithParent && out.status === 127 && out.stderr.startsWith('setpriv: failed to execute');

function finish(out: ProcessOutput, options: RunOptions | undefined, error?: Error): ProcessOutput {
  if (error) throw new ProcessError({ ...out, stderr: out.stderr || error.message }, error, true);
  if (notExecuted(out, options)) throw new ProcessError(out, undefined, true);
  if (out.status !== 0 && !options?.allowFailure) throw new ProcessError(out);
  return out;
}

/** The subset of Bun's native spawn API we use (no @types/bun in this project). */
interface BunSpawnOptions {
  env: Record<string, string | undefined>;
  stdin: Uint8Array | 'ignore';
  stdout: 'pipe';
  stderr: 'pipe' | 'inherit';
}
interface BunRuntime {
  spawn(argv: string[], options: BunSpawnOptions): { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> | null | number; exited: Promise<number>; exitCode: number | null; signalCode: string | null; kill(signal?: number): void };
}
const bun = (globalThis as { Bun?: BunRuntime }).Bun;

function bunOptions(options: RunOptions | undefined): BunSpawnOptions {
  return {
    env: options?.env ?? process.env,
    stdin: options?.input !== undefined ? new TextEncoder().encode(options.input) : 'ignore',
    stdout: 'pipe',
    stderr: options?.inheritStderr ? 'inherit' : 'pipe',
  };
}

/**
 * Spawning under the compiled binary (bun): its native spawn costs ~0.8 ms of CPU per process where
 * bun's node:child_process layer (streams, events) costs ~3.5 ms. Spawn failures (ENOENT) throw
 * synchronously, as a ProcessError.
 */
const bunExec: Exec = {
  async runAsync(argv, options) {
    let child: ReturnType<BunRuntime['spawn']>;
    try {
      if (ended) throw endedError(argv);
      child = bun!.spawn(spawnArgv(argv, options), bunOptions(options));
    } catch (err) {
      return finish({ argv, status: null, signal: null, stdout: '', stderr: '' }, options, err as Error);
    }
    track({ kill: () => child.kill(9), exited: child.exited });
    const stderr = typeof child.stderr === 'object' && child.stderr ? new Response(child.stderr).text() : '';
    const [stdout, err] = await Promise.all([new Response(child.stdout).text(), stderr, child.exited]);
    return finish({ argv, status: child.exitCode, signal: child.signalCode, stdout, stderr: err }, options);
  },
  endChildren,
};

/** node:child_process, loaded on first use: under Node (tests, dist/tscni.cjs). */
const childProcess = (): typeof ChildProcess => process.getBuiltinModule('node:child_process');

const nodeExec: Exec = {
  runAsync(argv, options) {
    if (ended) return Promise.reject(new ProcessError({ argv, status: null, signal: null, stdout: '', stderr: endedError(argv).message }));
    return new Promise((resolve, reject) => {
      const [file, ...args] = spawnArgv(argv, options);
      const child = childProcess().spawn(file!, args, {
        env: (options?.env ?? process.env) as NodeJS.ProcessEnv,
        stdio: ['pipe', 'pipe', options?.inheritStderr ? 'inherit' : 'pipe'],
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout!.on('data', (b: Buffer) => stdout.push(b));
      child.stderr?.on('data', (b: Buffer) => stderr.push(b));
      let spawnError: Error | undefined;
      child.on('error', (e) => (spawnError = e));
      track({ kill: () => child.kill('SIGKILL'), exited: new Promise((done) => child.on('close', done)) });
      child.stdin!.on('error', () => {}); // a child that exits without reading stdin is not our failure
      child.stdin!.end(options?.input ?? '');
      child.on('close', (status, signal) => {
        const out = { argv, status, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
        try {
          resolve(finish(out, options, spawnError));
        } catch (e) {
          reject(e);
        }
      });
    });
  },
  endChildren,
};

export const processExec: Exec = bun ? bunExec : nodeExec;
