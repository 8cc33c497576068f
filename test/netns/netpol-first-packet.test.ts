import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOrUndefined } from '../support/cni.ts';
import { connects, listening, NetpolNode, serve, spawnIn } from '../support/netpol-node.ts';
import { OUR_BIN, ROOT } from '../support/paths.ts';
import { Scope, sh } from '../support/scope.ts';

/**
 * Policy before the first packet. A pod is ADDed 100 times (cnitool: bridge, then netpol) into
 * namespace x, where a default-deny policy holds, with the same address and MAC each time; its
 * server listens before every ADD. A prober pod keeps 16 connects in flight to that address from
 * before the ADD starts until after it returns (its neighbour entry is static, so its SYNs are on
 * the wire at once). None may connect and no SYN of it may even arrive (an nft counter in the
 * pod's namespace); an allowed client does connect after each ADD, so the test can fail.
 *
 * What closes the gap between bridge's ADD (the interface is up) and netpol's ADD (the pod is
 * registered) is the guard: run the chain step by step, as a runtime does, and probe in between.
 */
const NODE = 'node1';
const objects = (extraNs = '') => `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x}}
- {apiVersion: v1, kind: Namespace, metadata: {name: p}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: target, labels: {app: target}}, spec: {nodeName: ${NODE}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: p, name: prober, labels: {pod: prober}}, spec: {nodeName: ${NODE}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: p, name: client, labels: {role: client}}, spec: {nodeName: ${NODE}}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {namespace: x, name: default-deny}
  spec: {podSelector: {}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {namespace: x, name: allow-client}
  spec:
    podSelector: {}
    ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}], ports: [{port: 8080}]}]
${extraNs}`;

const s = new Scope();
afterAll(() => s.dispose());

/** Counts TCP SYNs to 8080 per source address arriving in `netns` (prerouting, before anything else). */
function synCounter(netns: string, sources: string[]): () => Record<string, number> {
  const table = s.name('cnt');
  const rules = sources.map((ip) => `ip saddr ${ip} tcp dport 8080 tcp flags & (syn | ack) == syn counter`).join('\n');
  sh(['ip', 'netns', 'exec', netns, 'nft', '-f', '-'], `table inet ${table} { chain pre { type filter hook prerouting priority -500; policy accept;\n${rules}\n}\n}`);
  return () => {
    const out = sh(['ip', 'netns', 'exec', netns, 'nft', 'list', 'chain', 'inet', table, 'pre']);
    return Object.fromEntries(sources.map((ip) => [ip, Number(new RegExp(`ip saddr ${ip.replaceAll('.', '\\.')} .* counter packets (\\d+)`).exec(out)?.[1] ?? NaN)]));
  };
}

/** The prober (test/support/tcp-prober.mjs) in `netns`; mark() returns the period since the last mark. */
function startProber(netns: string, ip: string) {
  const child = spawnIn(s, netns, [process.execPath, join(ROOT, 'test', 'support', 'tcp-prober.mjs'), ip, '8080'], ['pipe', 'pipe', 'inherit']);
  const waiting: ((r: { attempts: number; connected: number }) => void)[] = [];
  let buffered = '';
  child.stdout!.on('data', (b: Buffer) => {
    buffered += b;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.(JSON.parse(line) as { attempts: number; connected: number });
    }
  });
  return {
    mark: () => new Promise<{ attempts: number; connected: number }>((resolve) => {
      waiting.push(resolve);
      child.stdin!.write('mark\n');
    }),
    stop: () => new Promise<{ attempts: number; connected: number }>((resolve) => {
      waiting.push(resolve);
      child.stdin!.end();
    }),
  };
}

describe('policy before first packet', () => {
  const TARGET = '10.80.0.200';
  const MAC = '02:00:0a:50:00:c8';
  let node: NetpolNode;
  let targetNs: string;

  beforeAll(async () => {
    node = new NetpolNode(s, { subnet: '10.80.0.0/24', nodeName: NODE });
    node.write('cluster.yaml', objects());
    await node.addPod('prober', 'p');
    await node.addPod('client', 'p');
    targetNs = s.netns('t').name;
    serve(s, targetNs, 8080);
    await listening(targetNs);
    sh(['ip', '-n', node.pods.prober!.netns, 'neigh', 'replace', TARGET, 'lladdr', MAC, 'dev', 'eth0', 'nud', 'permanent']);
  }, 60_000);

  it('100 ADDs under a prober: none gets through; the allowed client does', { timeout: 300_000 }, async () => {
    const { prober, client } = node.pods as Record<string, { netns: string; ip: string }>;
    const syns = synCounter(targetNs, [prober!.ip, client!.ip]);
    const probe = startProber(prober!.netns, TARGET);
    expect((await probe.mark()).attempts).toBeGreaterThan(0); // probing before the first ADD
    let probed = 0;
    let connected = 0;
    for (let i = 0; i < 100; i++) {
      const pod = { name: 'target', k8sNs: 'x', netns: targetNs, id: `c-t${i}`, args: `IgnoreUnknown=1;IP=${TARGET};MAC=${MAC}` };
      connected += (await probe.mark()).connected; // the period before this ADD
      const added = await node.cni('add', pod);
      const during = await probe.mark(); // from before the ADD started until after it returned
      expect(added.status, added.stderr).toBe(0);
      expect(added.json.ips[0].address).toBe(`${TARGET}/24`);
      expect(during.attempts, `round ${i}: the prober made no attempt during the ADD`).toBeGreaterThan(0);
      probed += during.attempts;
      connected += during.connected;
      expect(await connects(client!.netns, TARGET), `round ${i}: the allowed client`).toBe(true);
      const deleted = await node.cni('del', pod);
      expect(deleted.status, deleted.stderr).toBe(0);
    }
    connected += (await probe.stop()).connected;
    expect(connected).toBe(0);
    const counted = syns();
    expect(counted[prober!.ip]).toBe(0); // not one SYN of the prober reached the pod
    expect(counted[client!.ip]).toBeGreaterThanOrEqual(100);
    expect(probed).toBeGreaterThan(100);
  });
});

/**
 * The gap itself, step by step as a runtime runs the chain: bridge's ADD by direct exec, a probe,
 * then netpol's ADD with bridge's result as prevResult. The prober sits outside the pod subnet
 * (a namespace routed through the node), so even the first pod of the subnet has a peer.
 */
describe('the pre-registration guard closes the gap between bridge ADD and netpol ADD', () => {
  async function setup(subnet: string, podSubnets: string[]) {
    const node = new NetpolNode(s, { subnet, nodeName: NODE, podSubnets });
    node.write('cluster.yaml', objects());
    const peer = s.netns('q').name;
    const [a, b] = [s.name('va'), s.name('vb')];
    sh(['ip', 'link', 'add', a, 'netns', node.node, 'type', 'veth', 'peer', 'name', b, 'netns', peer]);
    sh(['ip', '-n', node.node, 'addr', 'add', '198.19.7.1/24', 'dev', a]);
    sh(['ip', '-n', node.node, 'link', 'set', a, 'up']);
    sh(['ip', '-n', peer, 'addr', 'add', '198.19.7.2/24', 'dev', b]);
    sh(['ip', '-n', peer, 'link', 'set', b, 'up']);
    sh(['ip', '-n', peer, 'route', 'add', subnet, 'via', '198.19.7.1']);
    const sync = await node.policy('sync');
    expect(sync.status, sync.stderr).toBe(0); // the table exists before the first pod
    return { node, peer };
  }

  /** One plugin of the chain by direct exec inside the node namespace. */
  async function step(node: NetpolNode, type: 'bridge' | 'netpol', podNs: string, id: string, prevResult?: unknown) {
    const name = id === 'g1' ? 'target' : id; // g2…: no Pod object, so its labels are unknown (fail closed)
    const list = JSON.parse(readFileSync(node.conflist, 'utf8'));
    const plugin = list.plugins.find((p: { type: string }) => p.type === type);
    const conf = { cniVersion: list.cniVersion, name: list.name, ...plugin, ...(prevResult ? { prevResult } : {}) };
    const r = await node.run([join(OUR_BIN, type)], { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${podNs}`, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN, CNI_ARGS: `K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}` }, JSON.stringify(conf));
    expect(r.status, r.stderr + r.stdout).toBe(0);
    return jsonOrUndefined(r.stdout);
  }

  async function pod(node: NetpolNode, id: string) {
    const netns = s.netns('t').name;
    serve(s, netns, 8080);
    await listening(netns);
    const result = await step(node, 'bridge', netns, id);
    return { netns, result, ip: (result.ips[0].address as string).split('/')[0]! };
  }

  it('with podSubnets: between the two ADDs the pod is unreachable, also the first pod of the subnet', async () => {
    const { node, peer } = await setup('10.82.0.0/24', ['10.82.0.0/24']);
    const t = await pod(node, 'g1');
    expect(await connects(peer, t.ip)).toBe(false); // guarded, not registered
    await step(node, 'netpol', t.netns, 'g1', t.result);
    expect(await connects(peer, t.ip)).toBe(false); // registered: default-deny
  }, 60_000);

  it('without podSubnets the first pod of a subnet is open until netpol ADD; later ones are guarded', async () => {
    const { node, peer } = await setup('10.83.0.0/24', []);
    const first = await pod(node, 'g1');
    expect(await connects(peer, first.ip)).toBe(true); // the risk the README names
    await step(node, 'netpol', first.netns, 'g1', first.result);
    expect(await connects(peer, first.ip)).toBe(false);
    const second = await pod(node, 'g2'); // the first registration guarded its prefix
    expect(await connects(peer, second.ip)).toBe(false);
  }, 60_000);
});

/**
 * A real flow of an address's previous owner: a long-lived connection from a prober to a pod, the
 * pod deleted, a new pod ADDed with the same address and MAC into the default-deny namespace. The
 * prober's socket keeps retransmitting on the old 5-tuple; were its conntrack entry still there it
 * would count as established and reach the new pod. ADD flushed it: the packets still cross the
 * node (a counter of the test's own on forward), none arrives in the new pod's namespace.
 */
describe('ADD flushes conntrack: no flow of a previous owner reaches the new pod', () => {
  it('a long-lived connection to the address does not continue to its new owner', async () => {
    const IP = '10.85.0.200';
    const MAC = '02:00:0a:55:00:c8';
    const node = new NetpolNode(s, { subnet: '10.85.0.0/24', nodeName: NODE });
    node.write('cluster.yaml', objects());
    const prober = await node.addPod('prober', 'p');
    const oldNs = s.netns('o').name;
    spawnIn(s, oldNs, ['socat', 'TCP-LISTEN:9090,reuseaddr,fork', 'SYSTEM:cat']);
    await listening(oldNs, 9090);
    const old = { name: 'old', k8sNs: 'p', netns: oldNs, id: 'c-old', args: `IgnoreUnknown=1;IP=${IP};MAC=${MAC}` };
    expect((await node.cni('add', old)).status).toBe(0);

    const flow = spawnIn(s, prober.netns, ['sh', '-c', `while :; do echo x; sleep 0.1; done | socat - TCP:${IP}:9090`], ['ignore', 'pipe', 'ignore']);
    let echoed = 0;
    flow.stdout!.on('data', (b: Buffer) => (echoed += b.length));
    for (let i = 0; i < 100 && echoed < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(echoed).toBeGreaterThanOrEqual(3); // the flow is up and established
    expect(sh(['ip', 'netns', 'exec', node.node, 'conntrack', '-L', '-p', 'tcp', '-d', IP, '--dport', '9090'])).toContain('ESTABLISHED');

    const crossed = s.name('fwd');
    sh(['ip', 'netns', 'exec', node.node, 'nft', '-f', '-'], `table inet ${crossed} {\n chain crossing {\n  type filter hook forward priority -500; policy accept;\n  ip saddr ${prober.ip} ip daddr ${IP} tcp dport 9090 counter\n }\n}\n`);
    const crossedCount = () => Number(/counter packets (\d+)/.exec(sh(['ip', 'netns', 'exec', node.node, 'nft', 'list', 'chain', 'inet', crossed, 'crossing']))?.[1]);

    expect((await node.cni('del', old)).status).toBe(0);
    const newNs = s.netns('t').name;
    const arrived = s.name('arr');
    sh(['ip', 'netns', 'exec', newNs, 'nft', '-f', '-'], `table inet ${arrived} {\n chain pre {\n  type filter hook prerouting priority -500; policy accept;\n  ip saddr ${prober.ip} tcp dport 9090 counter\n }\n}\n`);
    const added = await node.cni('add', { name: 'target', k8sNs: 'x', netns: newNs, id: 'c-new', args: `IgnoreUnknown=1;IP=${IP};MAC=${MAC}` });
    expect(added.status, added.stderr).toBe(0);
    const before = crossedCount();
    for (let i = 0; i < 500 && crossedCount() < before + 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(crossedCount()).toBeGreaterThanOrEqual(before + 2); // the old flow kept sending after the ADD
    expect(sh(['ip', 'netns', 'exec', newNs, 'nft', 'list', 'chain', 'inet', arrived, 'pre'])).toMatch(/counter packets 0 /);
  }, 60_000);
});
