// Process start: CNI_COMMAND=VERSION does no work beyond start-up, parse and print.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, ROOT, stats } from './lib.mjs';

/** An empty program compiled exactly as tscni is: the floor bun's start-up puts under any call. */
function emptyBunBinary(dir) {
  writeFileSync(join(dir, 'empty.ts'), 'import { writeSync } from "node:fs";\nwriteSync(1, "{}");\n');
  const out = join(dir, 'empty');
  execFileSync(join(ROOT, 'node_modules', '.bin', 'bun'), ['build', '--compile', '--bytecode', '--minify', '--format=esm', '--target=bun', '--compile-jit-policy=1000', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', join(dir, 'empty.ts'), '--outfile', out], { cwd: dir, stdio: 'ignore' });
  return out;
}

/**
 * Process start timed by hyperfine -N: it forks and execs the program itself and waits for it,
 * without the ~2–3 ms that node's spawnSync (pipes, a 50 MB parent) adds to every process the
 * other sections time. stdin is /dev/null: a VERSION call needs no config.
 */
function hyperfineTimes(ctx, dir, commands) {
  const json = join(dir, 'hyperfine.json');
  execFileSync('hyperfine', ['-N', '--style', 'none', '-w', String(ctx.warmup), '-r', String(ctx.runs), '--export-json', json, ...commands], {
    env: childEnv({ CNI_COMMAND: 'VERSION' }),
    stdio: 'ignore',
  });
  return JSON.parse(readFileSync(json, 'utf8')).results.map((r) => stats(r.times.map((s) => s * 1000)));
}

export default {
  id: 'version',
  title: 'VERSION (process start)',
  notes:
    'Target: tscni median ≤ 10 ms. Every CNI call is a process start, so this is the floor under every verb. ' +
    'Timed with `hyperfine -N` (it execs and waits for each process itself); the other sections time each process from node (spawnSync), which adds ~2–3 ms to both sides. ' +
    'The second row compares tscni with an empty program compiled the same way (bun --compile --bytecode): what is left above 1.0× is our own start-up work.',
  run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'tscni-bench-empty-'));
    try {
      const [ours, ref, empty] = hyperfineTimes(ctx, dir, [ctx.ours('loopback'), ctx.ref('loopback'), emptyBunBinary(dir)]);
      return [ctx.compare('VERSION (loopback)', ours, ref), ctx.compare('VERSION vs an empty bun binary (in the reference columns)', ours, empty)];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
