// Process start: CNI_COMMAND=VERSION does no work beyond start-up, parse and print.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const STDIN = JSON.stringify({ cniVersion: '1.0.0' });

/** An empty program compiled exactly as tscni is: the floor bun's start-up puts under any call. */
function emptyBunBinary(dir) {
  writeFileSync(join(dir, 'empty.ts'), 'import { writeSync } from "node:fs";\nwriteSync(1, "{}");\n');
  const out = join(dir, 'empty');
  execFileSync(join(ROOT, 'node_modules', '.bin', 'bun'), ['build', '--compile', '--bytecode', '--minify', '--format=esm', '--target=bun', '--compile-jit-policy=1000', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', join(dir, 'empty.ts'), '--outfile', out], { cwd: dir, stdio: 'ignore' });
  return out;
}

export default {
  id: 'version',
  title: 'VERSION (process start)',
  notes:
    'Target: tscni median ≤ 10 ms. Every CNI call is a process start, so this is the floor under every verb. ' +
    'The second row compares tscni with an empty program compiled the same way (bun --compile --bytecode): what is left above 1.0× is our own start-up work.',
  run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'tscni-bench-empty-'));
    try {
      const empty = emptyBunBinary(dir);
      const times = ctx.sample(() => ({
        ours: ctx.timeSpawn(ctx.ours('loopback'), { env: { CNI_COMMAND: 'VERSION' }, stdin: STDIN }),
        ref: ctx.timeSpawn(ctx.ref('loopback'), { env: { CNI_COMMAND: 'VERSION' }, stdin: STDIN }),
        empty: ctx.timeSpawn(empty, { stdin: STDIN }),
      }));
      return [ctx.compare('VERSION (loopback)', times.ours, times.ref), ctx.compare('VERSION vs an empty bun binary (in the reference columns)', times.ours, times.empty)];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
