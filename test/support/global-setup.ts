import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CNITOOL, OUR_BIN, ROOT } from './paths.ts';

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when any source is newer than the binary, and cnitool once. */
export default function setup(): void {
  const bin = join(OUR_BIN, 'tscni');
  const sources = Math.max(...['lib', 'plugins', 'ipam', 'cli'].map((d) => newestSource(join(ROOT, d))), statSync(join(ROOT, 'main.ts')).mtimeMs);
  if (!process.env.TSCNI_NO_BUILD && (!existsSync(bin) || statSync(bin).mtimeMs < sources)) {
    execFileSync('node', [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: ROOT });
  }
  if (!existsSync(CNITOOL)) {
    execFileSync('bash', [join(ROOT, 'scripts', 'cnitool.sh')], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CNITOOL } });
  }
}
