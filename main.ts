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

/** Reads all of stdin; a non-blocking pipe (EAGAIN) is polled until the writer closes it. */
function readStdin(): string {
  let buf = Buffer.allocUnsafe(65536);
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    let n: number;
    try {
      n = readSync(0, buf, length, buf.length - length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF' || code === 'EBADF') break;
      throw err;
    }
    if (n === 0) break;
    length += n;
  }
  return buf.toString('utf8', 0, length);
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
