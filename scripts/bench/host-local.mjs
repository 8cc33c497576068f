// host-local ADD then DEL of one attachment, alternating, on stores already holding 0, 1,000 and
// 10,000 reservations (written in the reference's layout, so both implementations read the same).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

export default {
  id: 'host-local',
  title: 'host-local ADD / DEL by store size',
  notes:
    'Direct exec, cniVersion 1.0.0, one range 10.20.0.0/16; the store is prefilled with N reservations in the reference layout ' +
    '(ours adopts it: its index is built during warm-up). Each iteration is an ADD then a DEL of the same attachment. ' +
    'The reference reads every reservation file on ADD and DEL; ours reserves with link(2) and finds an attachment through its index, ' +
    'so its cost does not depend on N. Ours pays a larger process start (bun) than the Go binary: compare the 1,000 and 10,000 rows.',
  run(ctx) {
    const root = mkdtempSync(join(tmpdir(), 'bench-hl-'));
    try {
      const rows = [];
      for (const fill of FILLS) {
        const time = (side, dir, file) => {
          const dataDir = join(root, `${side}-${fill}`);
          prefill(dataDir, fill);
          const conf = JSON.stringify({ cniVersion: '1.0.0', name: NETWORK, type: 'host-local', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.20.0.0/16' }]] } });
          const env = (command, i) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(i), CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: dir });
          return ctx.sample((i) => ({
            ADD: ctx.timeSpawn(file, { env: env('ADD', i), stdin: conf }),
            DEL: ctx.timeSpawn(file, { env: env('DEL', i), stdin: conf }),
          }));
        };
        const ours = time('ours', ctx.oursDir, ctx.ours('host-local'));
        const ref = time('ref', ctx.refDir, ctx.ref('host-local'));
        const n = fill.toLocaleString('en-US');
        rows.push(ctx.compare(`ADD, ${n} reserved`, ours.ADD, ref.ADD), ctx.compare(`DEL, ${n} reserved`, ours.DEL, ref.DEL));
      }
      return rows;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};
