import { spawn } from 'node:child_process';

export interface AsyncRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunAsyncOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (empty by default). */
  input?: string;
  /** Start this long from now (to interleave concurrent runs). */
  delayMs?: number;
  /** SIGKILL at this point of the process's life. */
  killAfterMs?: number;
}

/**
 * Runs argv without blocking the test, for concurrent runs (spawnSync serialises them); resolves
 * when it closes, never rejects: a failure to start is status null with the error in stderr.
 */
export function runAsync(argv: readonly string[], options: RunAsyncOptions = {}): Promise<AsyncRun> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    setTimeout(() => {
      const child = spawn(file!, args, { env: options.env ?? process.env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b));
      child.stderr.on('data', (b: Buffer) => (stderr += b));
      child.stdin.on('error', () => {}); // a process killed early closes its stdin under us
      child.on('error', (err) => resolve({ status: null, signal: null, stdout, stderr: stderr + err.message }));
      child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
      child.stdin.end(options.input ?? '');
      if (options.killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    }, options.delayMs ?? 0);
  });
}
