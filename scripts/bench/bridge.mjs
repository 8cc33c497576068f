// bridge + host-local: ADD then DEL of one attachment, alternating, and N concurrent first ADDs
// onto a cold bridge (wall time for all of them), ours vs the reference.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, stats } from './lib.mjs';

function confFor(ctx, tag, subnet, cleanups) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-bridge-'));
  const bridge = `bb${process.pid % 10000}${tag}`;
  cleanups.push(() => {
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(dataDir, { recursive: true, force: true });
  });
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `bench-bridge-${tag}`,
    type: 'bridge',
    bridge,
    isGateway: true,
    ipMasq: true,
    ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
  });
}

/** One exec; resolves with its exit status and stdout (a failure is counted, not thrown). */
function run(file, env, stdin) {
  return new Promise((resolve) => {
    const child = spawn(file, [], { env: childEnv(env) });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.on('error', () => resolve({ status: null, out }));
    child.on('close', (status) => resolve({ status, out }));
    child.stdin.end(stdin);
  });
}

/** Addresses handed out more than once among successful ADD results. */
function duplicates(results) {
  const seen = new Set();
  let dups = 0;
  for (const r of results) {
    if (r.status !== 0) continue;
    for (const ip of JSON.parse(r.out).ips ?? []) {
      if (seen.has(ip.address)) dups++;
      seen.add(ip.address);
    }
  }
  return dups;
}

export default {
  id: 'bridge',
  title: 'bridge + host-local ADD / DEL',
  notes:
    'Direct exec, cniVersion 1.0.0, isGateway + ipMasq (iptables), one namespace per implementation; each iteration is an ADD then a DEL of the same attachment, the DEL with the ADD\'s result as prevResult (as libcni sends it). ' +
    'tscni runs host-local in-process (CNI_PATH is its own directory); the reference execs its host-local. ' +
    '"N concurrent ADDs" is the wall time for N first ADDs onto a cold bridge, started together, then of their N DELs; the median of 3 rounds, with failures and duplicate addresses counted (tscni vs reference).',
  async run(ctx) {
    const cleanups = [];
    try {
      const sequential = (dir, tag, subnet) => {
        const conf = confFor(ctx, tag, subnet, cleanups);
        const ns = ctx.netns();
        const env = (command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(tag), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: dir });
        // DEL gets the ADD's result as prevResult, as libcni (containerd, podman, cnitool) sends it
        return ctx.sample(() => {
          const start = process.hrtime.bigint();
          const add = spawnSync(join(dir, 'bridge'), [], { env: childEnv(env('ADD')), input: conf, encoding: 'utf8' });
          const ADD = Number(process.hrtime.bigint() - start) / 1e6;
          if (add.status !== 0) throw new Error(`${dir}/bridge ADD exited ${add.status}: ${add.stdout.slice(0, 300)}`);
          const DEL = ctx.timeSpawn(join(dir, 'bridge'), { env: env('DEL'), stdin: JSON.stringify({ ...JSON.parse(conf), prevResult: JSON.parse(add.stdout) }) });
          return { ADD, DEL };
        });
      };
      const ours = sequential(ctx.oursDir, 'o', '10.251.1.0/24');
      const ref = sequential(ctx.refDir, 'r', '10.251.2.0/24');
      const rows = [ctx.compare('bridge ADD', ours.ADD, ref.ADD), ctx.compare('bridge DEL', ours.DEL, ref.DEL)];

      // Wall time of n ADDs started together, then of their n DELs; failures and duplicate
      // addresses are summed over the rounds.
      const concurrent = async (dir, tag, subnet, n) => {
        const add = [];
        const del = [];
        let failures = 0;
        let dups = 0;
        for (let round = 0; round < 3; round++) {
          const conf = confFor(ctx, `${tag}${n}${round}`, subnet, cleanups);
          const envs = Array.from({ length: n }, (_, i) => ({ CNI_CONTAINERID: `${ctx.containerId(tag)}-${n}-${round}-${i}`, CNI_NETNS: ctx.netns().path, CNI_IFNAME: 'eth0', CNI_PATH: dir }));
          const all = async (command) => {
            const start = process.hrtime.bigint();
            const results = await Promise.all(envs.map((e) => run(join(dir, 'bridge'), { ...e, CNI_COMMAND: command }, conf)));
            failures += results.filter((r) => r.status !== 0).length;
            return { ms: Number(process.hrtime.bigint() - start) / 1e6, results };
          };
          const added = await all('ADD');
          add.push(added.ms);
          dups += duplicates(added.results);
          del.push((await all('DEL')).ms);
        }
        return { add: stats(add), del: stats(del), failures, dups };
      };
      for (const n of [50, 100]) {
        const o = await concurrent(ctx.oursDir, 'co', '10.251.8.0/22', n);
        const r = await concurrent(ctx.refDir, 'cr', '10.251.12.0/22', n);
        const tally = `failures ${o.failures} vs ${r.failures}, duplicate IPs ${o.dups} vs ${r.dups}, over 3 rounds`;
        rows.push({ ...ctx.compare(`${n} concurrent ADDs, wall for all (${tally})`, o.add, r.add), concurrency: n, tally: { ours: o, reference: r } });
        rows.push(ctx.compare(`${n} concurrent DELs, wall for all`, o.del, r.del));
      }
      return rows;
    } finally {
      while (cleanups.length) cleanups.pop()();
    }
  },
};
