import { readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { fileIdentity } from './lib/cni/delegate.ts';
import { runPlugin } from './lib/cni/skel.ts';
import { processExec } from './lib/exec.ts';
import { loadPlugin } from './plugins/registry.ts';

/** The name we were invoked as: the hardlink's name in a compiled binary, the script's under node. */
function invokedName(): string {
  const name = basename(process.argv0);
  const script = process.argv[1];
  if ((name === 'node' || name === 'bun') && script) return basename(script).replace(/\.(c?js|ts)$/, '');
  return name;
}

/** Sleeps the thread: a non-blocking stdin has nothing yet and there is no event loop to wait on. */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Reads stdin until EOF or `limit` bytes, whichever comes first: a runtime cannot make us buffer
 * more than the core accepts. A non-blocking pipe (EAGAIN) is polled with a growing pause (up to
 * 20 ms) instead of a busy loop.
 */
function readStdin(limit: number): Uint8Array {
  let buf = Buffer.allocUnsafe(Math.min(65536, limit));
  let length = 0;
  let idle = 0;
  while (length < limit) {
    if (length === buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, limit));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    let n: number;
    try {
      n = readSync(0, buf, length, buf.length - length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        pause((idle = Math.min(idle + 1, 20)));
        continue;
      }
      if (code === 'EOF' || code === 'EBADF') break;
      throw err;
    }
    if (n === 0) break;
    idle = 0;
    length += n;
  }
  return buf.subarray(0, length);
}

function write(fd: number, text: string): void {
  const data = Buffer.from(text);
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

async function main(): Promise<number> {
  const name = invokedName();
  const plugin = await loadPlugin(name);
  if (plugin) {
    const standalone = name === 'node' || name === 'bun';
    const code = await runPlugin(plugin, {
      env: process.env,
      readStdin,
      writeStdout: (t) => write(1, t),
      writeStderr: (t) => write(2, t),
      exec: processExec,
      resolve: loadPlugin,
      self: standalone ? undefined : fileIdentity(process.execPath),
    });
    // Everything is written (synchronously) and nothing else is pending: exiting now skips the
    // runtime's shutdown (~1 ms of every plugin call under bun).
    process.exit(code);
  }
  const { runCli } = await import('./cli/index.ts');
  return runCli(process.argv.slice(2), { writeStdout: (t) => write(1, t), writeStderr: (t) => write(2, t) });
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    write(2, `tscni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
