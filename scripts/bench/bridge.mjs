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

function run(file, env, stdin) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env: childEnv(env) });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`${file} ${env.CNI_COMMAND} exited ${status}: ${out.slice(0, 300)}`))));
    child.stdin.end(stdin);
  });
}

export default {
  id: 'bridge',
  title: 'bridge + host-local ADD / DEL',
  notes:
    'Direct exec, cniVersion 1.0.0, isGateway + ipMasq (iptables), one namespace per implementation; each iteration is an ADD then a DEL of the same attachment. ' +
    'tscni runs host-local in-process (CNI_PATH is its own directory); the reference execs its host-local. ' +
    '"N concurrent ADDs" is the wall time for N first ADDs onto a cold bridge, started together (then all DELed, untimed).',
  async run(ctx) {
    const cleanups = [];
    try {
      const sequential = (dir, tag, subnet) => {
        const conf = confFor(ctx, tag, subnet, cleanups);
        const ns = ctx.netns();
        const env = (command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(tag), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: dir });
        return ctx.sample(() => ({
          ADD: ctx.timeSpawn(join(dir, 'bridge'), { env: env('ADD'), stdin: conf }),
          DEL: ctx.timeSpawn(join(dir, 'bridge'), { env: env('DEL'), stdin: conf }),
        }));
      };
      const ours = sequential(ctx.oursDir, 'o', '10.251.1.0/24');
      const ref = sequential(ctx.refDir, 'r', '10.251.2.0/24');
      const rows = [ctx.compare('bridge ADD', ours.ADD, ref.ADD), ctx.compare('bridge DEL', ours.DEL, ref.DEL)];

      const concurrent = async (dir, tag, subnet, n) => {
        const samples = [];
        for (let round = 0; round < 3; round++) {
          const conf = confFor(ctx, `${tag}${n}${round}`, subnet, cleanups);
          const envs = Array.from({ length: n }, (_, i) => ({ CNI_CONTAINERID: `${ctx.containerId(tag)}-${n}-${round}-${i}`, CNI_NETNS: ctx.netns().path, CNI_IFNAME: 'eth0', CNI_PATH: dir }));
          const start = process.hrtime.bigint();
          await Promise.all(envs.map((e) => run(join(dir, 'bridge'), { ...e, CNI_COMMAND: 'ADD' }, conf)));
          samples.push(Number(process.hrtime.bigint() - start) / 1e6);
          await Promise.all(envs.map((e) => run(join(dir, 'bridge'), { ...e, CNI_COMMAND: 'DEL' }, conf)));
        }
        return stats(samples);
      };
      for (const n of [50, 100]) {
        const o = await concurrent(ctx.oursDir, 'co', '10.251.8.0/22', n);
        const r = await concurrent(ctx.refDir, 'cr', '10.251.12.0/22', n);
        rows.push(ctx.compare(`${n} concurrent ADDs (all)`, o, r));
      }
      return rows;
    } finally {
      while (cleanups.length) cleanups.pop()();
    }
  },
};
