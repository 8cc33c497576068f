// CPU time and peak RSS per invocation, ours vs the reference, from wait4(2) (scripts/bench/rusage.py):
// user+sys of the whole process tree (the plugin and every process it waited for) and the largest
// resident set among them. CPU time is what a loaded node pays; wall time on a busy machine is noise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, stats } from './lib.mjs';

const RUSAGE = join(dirname(fileURLToPath(import.meta.url)), 'rusage.py');

/** Runs the jobs in order under rusage.py: [{ cpu ms, rss MB }]; a failed call throws. */
function measureAll(jobs) {
  const r = spawnSync('python3', [RUSAGE], { input: JSON.stringify(jobs.map((j) => ({ argv: [j.file], env: childEnv(j.env), stdin: j.stdin }))), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python3 ${RUSAGE}: ${r.error?.message ?? r.stderr.slice(0, 500)}`);
  return JSON.parse(r.stdout).map((res, i) => {
    if (res.status !== 0) throw new Error(`${jobs[i].file} ${jobs[i].env.CNI_COMMAND} exited ${res.status}: ${res.stdout.slice(0, 300)}`);
    return { cpu: res.cpu_us / 1000, rss: res.maxrss_kb / 1024 };
  });
}

export default {
  id: 'resources',
  title: 'CPU time and peak RSS per invocation',
  notes:
    'wait4(2) and GNU time around each call (direct exec, cniVersion 1.0.0): CPU is user+sys of the plugin and every process it waited for (ip, nsenter, iptables-restore; ' +
    'the reference\'s host-local and iptables), median over the runs; RSS is the median peak resident set of the largest process in the tree. ' +
    'bridge is isGateway + ipMasq (iptables) with host-local, each iteration an ADD then a DEL without prevResult (containerd CRI\'s second DEL; with a prevResult ours skips two iptables/ip6tables-save reads).',
  render(rows) {
    const lines = ['| operation | tscni CPU | reference CPU | CPU tscni / reference | tscni peak RSS | reference peak RSS |', '|---|---:|---:|---:|---:|---:|'];
    for (const r of rows) {
      lines.push(`| ${r.operation} | ${r.ours.cpu.toFixed(1)} ms | ${r.reference.cpu.toFixed(1)} ms | ${(r.ours.cpu / r.reference.cpu).toFixed(2)}× | ${r.ours.rss.toFixed(1)} MB | ${r.reference.rss.toFixed(1)} MB |`);
    }
    return lines.join('\n');
  },
  run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-res-'));
    const bridges = [];
    try {
      const summarize = (samples) => ({ cpu: stats(samples.map((s) => s.cpu)).median, rss: stats(samples.map((s) => s.rss)).median });
      // One iteration is a list of [operation, job]; all iterations run in one rusage.py process.
      const sampleOps = (iteration) => {
        const plan = Array.from({ length: ctx.warmup + ctx.runs }, iteration).flat();
        const measured = measureAll(plan.map(([, job]) => job));
        const acc = {};
        plan.forEach(([op], i) => i >= ctx.warmup * (plan.length / (ctx.warmup + ctx.runs)) && (acc[op] ??= []).push(measured[i]));
        return Object.fromEntries(Object.entries(acc).map(([op, s]) => [op, summarize(s)]));
      };
      const side = (pluginDir, tag, subnet) => {
        const ns = ctx.netns();
        const bridge = `br${process.pid % 10000}${tag}`;
        bridges.push(bridge);
        const lo = JSON.stringify({ cniVersion: '1.0.0', name: 'bench-res-lo', type: 'loopback' });
        const br = JSON.stringify({ cniVersion: '1.0.0', name: `bench-res-${tag}`, type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: join(dir, tag), ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } });
        const env = (command, ifname) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(`res${tag}`), CNI_NETNS: ns.path, CNI_IFNAME: ifname, CNI_PATH: pluginDir });
        const job = (plugin, e, stdin) => ({ file: join(pluginDir, plugin), env: e, stdin });
        return sampleOps(() => [
          ['VERSION', job('loopback', { CNI_COMMAND: 'VERSION' }, lo)],
          ['loopback ADD', job('loopback', env('ADD', 'lo'), lo)],
          ['loopback DEL', job('loopback', env('DEL', 'lo'), lo)],
          ['bridge ADD', job('bridge', env('ADD', 'eth0'), br)],
          ['bridge DEL', job('bridge', env('DEL', 'eth0'), br)],
        ]);
      };
      const ours = side(ctx.oursDir, 'o', '10.251.20.0/24');
      const ref = side(ctx.refDir, 'r', '10.251.21.0/24');
      return Object.keys(ours).map((operation) => ({ operation, ours: ours[operation], reference: ref[operation] }));
    } finally {
      for (const b of bridges) spawnSync('ip', ['link', 'del', b]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
