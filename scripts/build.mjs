#!/usr/bin/env node
// Builds tscni: dist/tscni.cjs (esbuild, runs under Node) and dist/bin/tscni (bun --compile
// --bytecode, the release binary) with a hardlink per plugin name.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const bin = join(dist, 'bin');
const bunBin = join(root, 'node_modules', '.bin', 'bun');

// Everything is built in a private staging dir and renamed into place, so concurrent builds (tests
// rebuild when sources changed) never read or remove each other's half-written files.
const staging = join(dist, `.staging-${process.pid}`);
rmSync(staging, { recursive: true, force: true });
mkdirSync(join(staging, 'bin'), { recursive: true });
const bundle = join(staging, 'tscni.cjs');

await build({
  entryPoints: [join(root, 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  // loaded only under bun (lib/ip/netns-enter.ts)
  external: ['bun:ffi'],
  logLevel: 'warning',
});

const tscni = join(staging, 'bin', 'tscni');
// The binary is bun's own bundle of main.ts as ES modules with --splitting: each plugin and the
// operator CLI stay separate modules in the bytecode, loaded when imported, so a plugin call does not
// load the rest (measured: ~1 ms less CPU and 2–3 ms less wall per VERSION than one CJS bundle).
// cwd is the staging dir: bun leaves temporary *.bun-build files in its cwd.
// A CNI call lives ~10–50 ms and runs most of its code once: JIT tier-up only burns CPU on compiler
// threads. --compile-jit-policy=1000 keeps such code in the interpreter (measured on a bridge ADD:
// ~7–10 ms less CPU and ~4 MB less RSS per call). A long-running command (vxlan sync --watch) may
// restore the normal policy with Bun.unsafe.setJITPolicy(1).
// A plugin must not read .env or bunfig.toml from the runtime's working directory.
execFileSync(bunBin, ['build', '--compile', '--bytecode', '--minify', '--format=esm', '--splitting', '--target=bun', '--compile-jit-policy=1000', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', join(root, 'main.ts'), '--outfile', tscni], {
  cwd: staging,
  stdio: ['ignore', 'ignore', 'inherit'],
});

const { plugins } = JSON.parse(execFileSync(tscni, ['version', '--json'], { encoding: 'utf8' }));
for (const name of plugins) linkSync(tscni, join(staging, 'bin', name));
renameSync(bundle, join(dist, 'tscni.cjs'));
const old = join(dist, `.old-${process.pid}`);
try {
  renameSync(bin, old);
} catch {
  // first build: nothing to move aside
}
renameSync(join(staging, 'bin'), bin);
rmSync(old, { recursive: true, force: true });
rmSync(staging, { recursive: true, force: true });
console.log(`built ${join(bin, 'tscni')} and links: ${plugins.join(', ')}`);
