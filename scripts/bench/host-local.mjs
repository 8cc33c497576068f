// host-local ADD then DEL of one attachment, alternating, on stores already holding 0, 1,000 and
// 10,000 reservations (written in the reference's layout, so both implementations read the same).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, ROOT, stats } from './lib.mjs';


const FILLS = [0, 1000, 10000];
const NETWORK = 'bench-hl';

/** The n-th usable address of 10.20.0.0/16, from 10.20.0.2 (.1 is the gateway). */
const address = (n) => `10.20.${(n + 2) >> 8}.${(n + 2) & 255}`;

function prefill(dataDir, count) {
  const store = join(dataDir, NETWORK);
  mkdirSync(store, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(store, address(i)), `prefill-${i}\r\neth0`);
  if (count > 0) writeFileSync(join(store, 'last_reserved_ip.0'), address(count - 1));
}

/**
 * Our ADD/DEL run in-process, as bridge runs its IPAM through ctx.delegate: a bun process imports
 * the sources once and times runPlugin calls; returns { ADD, DEL } summaries.
 */
function inProcess(ctx, conf) {
  const driver = `
    import { runPlugin } from ${JSON.stringify(join(ROOT, 'lib/cni/skel.ts'))};
    import { processExec } from ${JSON.stringify(join(ROOT, 'lib/exec.ts'))};
    import { loadPlugin } from ${JSON.stringify(join(ROOT, 'plugins/registry.ts'))};
    const plugin = await loadPlugin('host-local');
    const io = (command, i) => ({ env: { CNI_COMMAND: command, CNI_CONTAINERID: 'inproc-' + i, CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' },
      readStdin: () => ${JSON.stringify(conf)}, writeStdout: () => {}, writeStderr: (t) => process.stderr.write(t), exec: processExec, resolve: loadPlugin, self: undefined });
    const out = { ADD: [], DEL: [] };
    for (let i = 0; i < ${ctx.warmup + ctx.runs}; i++) {
      for (const command of ['ADD', 'DEL']) {
        const t = process.hrtime.bigint();
        if ((await runPlugin(plugin, io(command, i))) !== 0) throw new Error(command + ' failed');
        if (i >= ${ctx.warmup}) out[command].push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    console.log(JSON.stringify(out));`;
  const samples = JSON.parse(execFileSync(join(ROOT, 'node_modules', '.bin', 'bun'), ['-e', driver], { encoding: 'utf8', env: childEnv() }));
  return { ADD: stats(samples.ADD), DEL: stats(samples.DEL) };
}

export default {
  id: 'host-local',
  title: 'host-local ADD / DEL by store size',
  notes:
    'Direct exec, cniVersion 1.0.0, one range 10.20.0.0/16; the store is prefilled with N reservations in the reference layout ' +
    '(ours adopts it: its index is built during warm-up). Each iteration is an ADD then a DEL of the same attachment. ' +
    'The reference reads every reservation file on ADD and DEL; ours reserves with link(2) and finds an attachment through its index, ' +
    'so its cost does not depend on N. By exec, ours pays a larger process start (bun, ~13 ms) than the Go binary (~3 ms), which dominates ' +
    'until the reference\'s scan grows; the in-process rows are what bridge pays, since it runs our host-local through ctx.delegate instead of exec.',
  run(ctx) {
    const tmp = mkdtempSync(join(tmpdir(), 'bench-hl-'));
    try {
      const rows = [];
      for (const fill of FILLS) {
        const confFor = (side) => {
          const dataDir = join(tmp, `${side}-${fill}`);
          prefill(dataDir, fill);
          return JSON.stringify({ cniVersion: '1.0.0', name: NETWORK, type: 'host-local', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.20.0.0/16' }]] } });
        };
        const time = (side, dir, file) => {
          const conf = confFor(side);
          const env = (command, i) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(i), CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: dir });
          return ctx.sample((i) => ({
            ADD: ctx.timeSpawn(file, { env: env('ADD', i), stdin: conf }),
            DEL: ctx.timeSpawn(file, { env: env('DEL', i), stdin: conf }),
          }));
        };
        const ours = time('ours', ctx.oursDir, ctx.ours('host-local'));
        const ref = time('ref', ctx.refDir, ctx.ref('host-local'));
        const n = fill.toLocaleString('en-US');
        const inproc = inProcess(ctx, confFor('inproc'));
        rows.push(
          ctx.compare(`ADD, ${n} reserved`, ours.ADD, ref.ADD),
          ctx.compare(`DEL, ${n} reserved`, ours.DEL, ref.DEL),
          ctx.compare(`ADD in-process (bridge's path) vs reference exec, ${n} reserved`, inproc.ADD, ref.ADD),
          ctx.compare(`DEL in-process (bridge's path) vs reference exec, ${n} reserved`, inproc.DEL, ref.DEL),
        );
      }
      return rows;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};
