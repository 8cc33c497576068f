#!/usr/bin/env node
// Builds tscni: dist/tscni.cjs (esbuild, runs under Node) and dist/bin/tscni (bun --compile
// --bytecode, the release binary) with a hardlink per plugin name.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const bin = join(dist, 'bin');
const bunBin = join(root, 'node_modules', '.bin', 'bun');

await build({
  entryPoints: [join(root, 'main.ts')],
  outfile: join(dist, 'tscni.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// Build beside dist/bin and swap it in, so tests running from dist/bin never see a half-built dir.
const staging = `${bin}.staging-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
const tscni = join(staging, 'tscni');
// bun's bytecode needs CommonJS; the esbuild bundle is that, and already lowered for Node 20.
execFileSync(bunBin, ['build', '--compile', '--bytecode', '--minify', '--format=cjs', '--target=bun', join(dist, 'tscni.cjs'), '--outfile', tscni], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
for (const f of readdirSync(root)) if (f.endsWith('.bun-build')) rmSync(join(root, f));

const { plugins } = JSON.parse(execFileSync(tscni, ['version', '--json'], { encoding: 'utf8' }));
for (const name of plugins) linkSync(tscni, join(staging, name));
const old = `${bin}.old-${process.pid}`;
try {
  renameSync(bin, old);
} catch {
  // first build: nothing to move aside
}
renameSync(staging, bin);
rmSync(old, { recursive: true, force: true });
console.log(`built ${join(bin, 'tscni')} and links: ${plugins.join(', ')}`);
