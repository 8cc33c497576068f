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

function readStdin(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF' || code === 'EBADF') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
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
    return runPlugin(plugin, {
      env: process.env,
      readStdin,
      writeStdout: (t) => write(1, t),
      writeStderr: (t) => write(2, t),
      exec: processExec,
      resolve: loadPlugin,
      self: standalone ? undefined : fileIdentity(process.execPath),
    });
  }
  const { runCli } = await import('./lib/cli/index.ts');
  return runCli(process.argv.slice(2), { writeStdout: (t) => write(1, t), writeStderr: (t) => write(2, t) });
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    write(2, `tscni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
