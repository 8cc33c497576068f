// NetworkPolicy (netpol) on the issue's mix (scripts/bench/netpol-mix.mjs): sync from nothing, one
// pod label change, the policy step's cost in a containerd chain (chained plugin, in-process by
// bridge, none), and pod-to-pod TCP throughput and new connections per second with the 200
// policies vs without the table, in interleaved paired rounds. Everything runs in a "node" network
// namespace of its own; pods are namespaces attached to its bridges.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv, ROOT, stats } from './lib.mjs';
import { LOCAL_SUBNET, netpolMix, NODE } from './netpol-mix.mjs';

const cnitoolPath = () => execFileSync('bash', [join(ROOT, 'scripts', 'cnitool.sh')], { encoding: 'utf8', env: childEnv({ CNITOOL: process.env.CNITOOL }) }).trim();

/** Runs argv inside the node namespace; returns stdout, throws with the output on failure. */
function inNode(node, argv, { env = {}, input } = {}) {
  const r = spawnSync('ip', ['netns', 'exec', node, ...argv], { env: childEnv(env), input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${(r.stdout + r.stderr).slice(0, 500)}`);
  return r.stdout;
}

function writeMix(dir, mix = netpolMix()) {
  mkdirSync(dir, { recursive: true });
  for (const f of ['namespaces.json', 'pods.json', 'policies.json']) writeFileSync(join(dir, f), mix[f]);
  return mix;
}

/** `tscni policy sync --json` in the node: its summary (ms and phases) and the whole command's wall time. */
function sync(ctx, node, conflist, extra = []) {
  const start = process.hrtime.bigint();
  const out = inNode(node, [ctx.ours('tscni'), 'policy', 'sync', '--json', '--conf', conflist, ...extra]);
  return { ...JSON.parse(out), wall: Number(process.hrtime.bigint() - start) / 1e6 };
}

const median = (xs) => stats(xs).median;

/** Sync from nothing (no table, no state), then one pod's label toggled per run, each synced. */
function syncRows(ctx, node, dir, conflist, stateDir) {
  const runs = Math.max(3, Math.min(ctx.runs, 10));
  const cold = [];
  for (let i = 0; i < runs; i++) {
    spawnSync('ip', ['netns', 'exec', node, 'nft', 'delete', 'table', 'inet', 'tscni_policy'], { stdio: 'ignore' });
    rmSync(stateDir, { recursive: true, force: true });
    cold.push(sync(ctx, node, conflist));
  }
  // ns-00/p-20 is local: role=client puts it in (and out of) peer sets of several policies
  const mix = netpolMix();
  const changed = structuredClone(mix.pods);
  changed[20].metadata.labels.role = 'client';
  const podsFile = join(dir, 'pods.json');
  const list = (items) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  const label = [];
  for (let i = 0; i < runs * 2; i++) {
    writeFileSync(podsFile, list(i % 2 ? mix.pods : changed));
    const s = sync(ctx, node, conflist);
    if (s.applied !== 'diff') throw new Error(`a label change applied ${s.applied}, not a diff`);
    label.push(s);
  }
  writeFileSync(podsFile, mix['pods.json']);
  const phase = (samples, f) => stats(samples.map(f));
  return [
    { measure: 'compile + apply from nothing (sync: compile + nft)', s: phase(cold, (s) => s.phases.compile + s.phases.apply), target: '≤ 200 ms' },
    { measure: '… of which the nft transaction', s: phase(cold, (s) => s.phases.apply) },
    { measure: '… reading + validating the source (JSON, 450 KB)', s: phase(cold, (s) => s.phases.read) },
    { measure: '… whole `tscni policy sync` command, from nothing', s: phase(cold, (s) => s.wall) },
    { measure: 'one pod label change to kernel (compile + diff + nft)', s: phase(label, (s) => s.phases.compile + s.phases.apply), target: '≤ 20 ms' },
    { measure: '… of which the nft transaction (diff)', s: phase(label, (s) => s.phases.apply) },
    { measure: '… reading + validating the source', s: phase(label, (s) => s.phases.read) },
  ];
}

/**
 * A pod's ADD (loopback network + pod network) and DEL through cnitool, as containerd's CRI runs
 * them, for three pod networks in one node: bridge/host-local/portmap alone, + netpol chained, and
 * bridge running the policy in-process. Interleaved per iteration; the cost is the median of the
 * per-iteration differences from the plain chain.
 */
function chainRows(ctx, node, dir, objects, stateDir) {
  const cnitool = cnitoolPath();
  const confDir = join(dir, 'conf');
  mkdirSync(confDir, { recursive: true });
  const tag = process.pid % 10000;
  const ipam = (subnet, k) => ({ type: 'host-local', dataDir: join(dir, `ipam-${k}`), ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] });
  const policy = { objects, stateDir, nodeName: NODE };
  const bridge = (k, subnet, extra = {}) => ({ type: 'bridge', bridge: `bn${tag}${k}`, isGateway: true, ipMasq: true, promiscMode: true, ipam: ipam(subnet, k), ...extra });
  const portmap = { type: 'portmap', capabilities: { portMappings: true } };
  const nets = {
    plain: [bridge('a', '10.201.1.0/24'), portmap],
    chained: [bridge('b', '10.202.1.0/24'), portmap, { type: 'netpol', ...policy }],
    inprocess: [bridge('c', '10.203.1.0/24', { policy }), portmap],
  };
  writeFileSync(join(confDir, '99-loopback.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'bench-lo', type: 'loopback' }));
  for (const [name, plugins] of Object.entries(nets)) writeFileSync(join(confDir, `10-${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: `bench-${name}`, plugins }));
  const pods = Object.fromEntries(Object.keys(nets).map((name) => [name, ctx.netns()]));
  // a pod the objects know (ns-00/p-0, local): ADD takes its labels from the index
  const env = (name, ifname) => ({ NETCONFPATH: confDir, CNI_PATH: ctx.oursDir, CNI_CACHEDIR: join(confDir, 'cache'), CNI_IFNAME: ifname, CNI_CONTAINERID: ctx.containerId(name), CNI_ARGS: 'K8S_POD_NAMESPACE=ns-00;K8S_POD_NAME=p-0' });
  const call = (verb, name, net, ifname) => ctx.timeSpawn('ip', { args: ['netns', 'exec', node, cnitool, verb, net, pods[name].path], env: env(name, ifname) });
  const teardown = () => {
    for (const name of Object.keys(nets)) {
      for (const [net, ifname] of [[`bench-${name}`, 'eth0'], ['bench-lo', 'lo']]) spawnSync('ip', ['netns', 'exec', node, cnitool, 'del', net, pods[name].path], { env: childEnv(env(name, ifname)), stdio: 'ignore' });
    }
  };
  try {
    const samples = ctx.sample(() => {
      const t = {};
      for (const name of Object.keys(nets)) t[`${name} add`] = call('add', name, 'bench-lo', 'lo') + call('add', name, `bench-${name}`, 'eth0');
      for (const name of Object.keys(nets)) t[`${name} del`] = call('del', name, `bench-${name}`, 'eth0') + call('del', name, 'bench-lo', 'lo');
      return t;
    });
    // paired differences: sample() keeps only stats, so time the pairs once more for the deltas
    const deltas = { chained: [], inprocess: [] };
    for (let i = 0; i < Math.max(5, Math.min(ctx.runs, 20)); i++) {
      const t = {};
      for (const name of Object.keys(nets)) {
        t[name] = call('add', name, 'bench-lo', 'lo') + call('add', name, `bench-${name}`, 'eth0');
        call('del', name, `bench-${name}`, 'eth0');
        call('del', name, 'bench-lo', 'lo');
      }
      deltas.chained.push(t.chained - t.plain);
      deltas.inprocess.push(t.inprocess - t.plain);
    }
    const version = ctx.sample(() => ({ v: ctx.timeSpawn(ctx.ours('netpol'), { env: { CNI_COMMAND: 'VERSION' } }) })).v;
    return [
      { measure: 'pod add: lo + bridge/host-local/portmap (no policy)', s: samples['plain add'] },
      { measure: 'pod add: … + netpol chained', s: samples['chained add'] },
      { measure: 'pod add: bridge with "policy" (in-process) + portmap', s: samples['inprocess add'] },
      { measure: 'policy step, chained (paired difference)', s: stats(deltas.chained), target: `≤ VERSION + 5 ms = ${(version.median + 5).toFixed(1)} ms` },
      { measure: 'policy step, in-process (paired difference)', s: stats(deltas.inprocess), target: '≤ 3 ms' },
      { measure: 'netpol VERSION (one of our process starts)', s: version },
      { measure: 'pod del: plain / chained / in-process', s: samples['plain del'], extra: `${samples['chained del'].median.toFixed(2)} / ${samples['inprocess del'].median.toFixed(2)} ms` },
    ];
  } finally {
    teardown();
    for (const plugins of Object.values(nets)) spawnSync('ip', ['netns', 'exec', node, 'ip', 'link', 'del', plugins[0].bridge], { stdio: 'ignore' });
  }
}

/** One pod of the mix attached through bridge with the policy in-process: ns-00/p-0 serves, ns-00/p-21 (frontend, client) connects. */
async function dataRows(ctx, node, dir, objects, stateDir, conflist) {
  const bridgeName = `bt${process.pid % 10000}`;
  const conf = { cniVersion: '1.1.0', name: 'bench-data', type: 'bridge', bridge: bridgeName, isGateway: true, ipam: { type: 'host-local', dataDir: join(dir, 'ipam-data'), ranges: [[{ subnet: LOCAL_SUBNET }]] }, policy: { objects, stateDir, nodeName: NODE } };
  const attach = (name) => {
    const ns = ctx.netns();
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: ctx.containerId(`data-${name}`), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: ctx.oursDir, CNI_ARGS: `K8S_POD_NAMESPACE=ns-00;K8S_POD_NAME=${name}` };
    const out = inNode(node, [ctx.ours('bridge')], { env, input: JSON.stringify(conf) });
    return { ns: ns.name, ip: JSON.parse(out).ips[0].address.split('/')[0] };
  };
  const last = cpus().length - 1;
  const pin = (cpu, argv) => (last > 0 ? ['taskset', '-c', String(cpu), ...argv] : argv);
  const procs = [];
  try {
    const server = attach('p-0');
    const client = attach('p-21');
    // the connection server: accept and close, in Node (socat forks per connection)
    const acceptor = 'require("net").createServer((s) => s.end()).listen(8080)';
    procs.push(spawn('ip', ['netns', 'exec', server.ns, ...pin(last, ['node', '-e', acceptor])], { stdio: 'ignore', env: childEnv() }));
    const connector = `const net=require("net");let n=0,live=true;const one=()=>{if(!live)return;const s=net.connect(8080,${JSON.stringify(server.ip)});s.on("close",()=>{n++;one()});s.on("error",()=>{});s.resume()};for(let i=0;i<16;i++)one();setTimeout(()=>{live=false;console.log(n/2)},2000)`;
    const connRate = () => Number(inNode(client.ns, pin(0, ['node', '-e', connector])).trim());
    const iperf = async () => {
      const srv = spawn('ip', ['netns', 'exec', server.ns, ...pin(last, ['iperf3', '-s', '-1', '-B', server.ip])], { stdio: 'ignore' });
      try {
        for (let attempt = 0; ; attempt++) {
          const r = spawnSync('ip', ['netns', 'exec', client.ns, ...pin(0, ['iperf3', '-c', server.ip, '-t', '2', '-J'])], { encoding: 'utf8' });
          const bps = r.status === 0 ? JSON.parse(r.stdout).end?.sum_received?.bits_per_second : undefined;
          if (bps) return bps / 1e9;
          if (attempt > 50) throw new Error(`iperf3: ${r.stdout.slice(0, 300)}${r.stderr}`);
          await sleep(100);
        }
      } finally {
        srv.kill('SIGKILL');
      }
    };
    const withTable = () => sync(ctx, node, conflist, ['--full']);
    // rounds alternate order, so two "without" may follow each other: the table may be gone already
    const withoutTable = () => spawnSync('ip', ['netns', 'exec', node, 'nft', 'delete', 'table', 'inet', 'tscni_policy'], { stdio: 'ignore' });
    // prove the path is judged: the server's address is in an isolation map
    withTable();
    if (!inNode(node, ['nft', 'list', 'map', 'inet', 'tscni_policy', 'ingress-ns-v4']).includes(server.ip)) throw new Error('the server pod is not isolated: the rounds would not pass the policy chains');
    await sleep(300);
    connRate(); // warm-up
    const rounds = [];
    for (let k = 0; k < 5; k++) {
      // alternate which side goes first, so a drift in load favours neither
      const order = k % 2 ? ['without', 'with'] : ['with', 'without'];
      const r = {};
      for (const side of order) {
        if (side === 'with') withTable();
        else withoutTable();
        r[`${side}Gbps`] = await iperf();
        r[`${side}Conns`] = connRate();
      }
      rounds.push(r);
    }
    const med = (f) => median(rounds.map(f));
    return [
      { measure: 'pod-to-pod TCP (iperf3, 2 s), with the 200 policies', value: `${med((r) => r.withGbps).toFixed(2)} Gbit/s` },
      { measure: '… without the table', value: `${med((r) => r.withoutGbps).toFixed(2)} Gbit/s` },
      { measure: '… ratio (median of per-round ratios)', value: `${med((r) => r.withGbps / r.withoutGbps).toFixed(3)}×`, target: '≥ 0.95×' },
      { measure: 'new TCP connections per second (16 in flight, 2 s), with the 200 policies', value: `${Math.round(med((r) => r.withConns))}/s` },
      { measure: '… without the table', value: `${Math.round(med((r) => r.withoutConns))}/s` },
      { measure: '… ratio (median of per-round ratios)', value: `${med((r) => r.withConns / r.withoutConns).toFixed(3)}×`, target: '≥ 0.9×' },
    ];
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'exec', node, 'ip', 'link', 'del', bridgeName], { stdio: 'ignore' });
  }
}

const cell = (s) => (s ? `${s.median.toFixed(2)} ms` : '');

export default {
  id: 'netpol',
  title: 'NetworkPolicy: 200 policies, 20 namespaces, 1,000 pods',
  notes:
    'The mix (scripts/bench/netpol-mix.mjs, deterministic): 20 namespaces, 1,000 pods (50 on this node), 200 policies cycling through the upstream e2e shapes — default deny ingress and egress, pod selectors, namespace selectors, both ANDed with matchExpressions (In, NotIn, Exists, DoesNotExist), numbered ports with endPort, named ports, a protocol-only port, SCTP, ipBlocks with except, allow-all — as three JSON `kind: List` files. ' +
    'Sync rows: `tscni policy sync --json` in a node namespace; compile + apply = its compile phase plus its diff and nft transaction (the summary\'s `phases`), reading the source apart. ' +
    'Chain rows: containerd\'s CRI order through cnitool (loopback network, then the pod network), run with `ip netns exec` into the node namespace (the same for every network); the policy step is the paired per-iteration difference from the same chain without policy. ' +
    'Data rows: two pods of the mix on one bridge (policy in-process), ns-00/p-0 serving and ns-00/p-21 connecting, both isolated, each connection judged by the namespace and policy chains; rounds alternate with and without table `inet tscni_policy`.',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-netpol-'));
    const node = ctx.netns().name;
    const objects = join(dir, 'objects');
    const stateDir = join(dir, 'state');
    writeMix(objects);
    const conflist = join(dir, 'netpol.conflist');
    writeFileSync(conflist, JSON.stringify({ cniVersion: '1.0.0', name: 'bench-netpol', plugins: [{ type: 'netpol', objects, stateDir, nodeName: NODE, podSubnets: [LOCAL_SUBNET] }] }));
    try {
      const rows = syncRows(ctx, node, objects, conflist, stateDir);
      sync(ctx, node, conflist, ['--full']);
      rows.push(...chainRows(ctx, node, dir, objects, stateDir));
      rows.push(...(await dataRows(ctx, node, dir, objects, stateDir, conflist)));
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  render(rows) {
    const lines = ['| measure | median | p90 | target |', '|---|---:|---:|---|'];
    for (const r of rows) lines.push(`| ${r.measure} | ${r.value ?? cell(r.s)}${r.extra ? ` (${r.extra})` : ''} | ${r.s ? `${r.s.p90.toFixed(2)} ms` : ''} | ${r.target ?? ''} |`);
    return lines.join('\n');
  },
};
