import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connects, listening, NetpolNode, serve } from '../support/netpol-node.ts';
import { Scope, sh } from '../support/scope.ts';

/**
 * Egress where the destination is not simply a pod on the bridge:
 * - a Service VIP that an nftables DNAT rule in the node namespace translates to a backend pod, as
 *   kube-proxy's nftables mode does: judged on the backend's address and port, not the VIP's;
 * - a host outside the cluster, played by a namespace routed from the node namespace with an
 *   address of the benchmarking range (198.18.0.0/15) that only this test's namespaces use.
 *
 * Pods of namespace x: backend {app: backend} serving 8080 as named port "web"; clients c0 (no
 * policy: the control that shows the paths work), c1…c5 each selected by one egress policy.
 */
const NODE = 'node1';
const VIP = '10.96.7.7';
const OUTSIDE = '198.18.5.5';

const policy = (name: string, app: string, egress: unknown) => `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {namespace: x, name: ${name}}
  spec: {podSelector: {matchLabels: {app: ${app}}}, policyTypes: [Egress], egress: ${JSON.stringify(egress)}}`;
const toBackend = { podSelector: { matchLabels: { app: 'backend' } } };
const OBJECTS = `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: backend, labels: {app: backend}}, spec: {nodeName: ${NODE}, containers: [{name: s, ports: [{name: web, containerPort: 8080}]}]}}
${['c0', 'c1', 'c2', 'c3', 'c4', 'c5'].map((c) => `- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: ${c}, labels: {app: ${c}}}, spec: {nodeName: ${NODE}}}`).join('\n')}
${policy('c1-backend-port', 'c1', [{ to: [toBackend], ports: [{ port: 8080 }] }])}
${policy('c2-backend-named', 'c2', [{ to: [toBackend], ports: [{ port: 'web' }] }])}
${policy('c3-vip-only', 'c3', [{ to: [{ ipBlock: { cidr: `${VIP}/32` } }], ports: [{ port: 80 }] }])}
${policy('c4-outside', 'c4', [{ to: [{ ipBlock: { cidr: '198.18.0.0/15' } }], ports: [{ port: 8080 }] }])}
${policy('c5-outside-except', 'c5', [{ to: [{ ipBlock: { cidr: '198.18.0.0/15', except: ['198.18.5.0/24'] } }] }])}
`;

const s = new Scope();
let node: NetpolNode;
let outside: string;
const netnsOf = (pod: string) => node.pods[pod]!.netns;

beforeAll(async () => {
  node = new NetpolNode(s, { subnet: '10.84.0.0/24', nodeName: NODE });
  node.write('cluster.yaml', OBJECTS);
  const backend = await node.addPod('backend', 'x');
  for (const c of ['c0', 'c1', 'c2', 'c3', 'c4', 'c5']) await node.addPod(c, 'x');
  // the Service: VIP:80 → backend:8080 in prerouting, in a table of this test's own
  const svc = s.name('svc');
  sh(['ip', 'netns', 'exec', node.node, 'nft', '-f', '-'], `table ip ${svc} {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n  ip daddr ${VIP} tcp dport 80 dnat to ${backend.ip}:8080\n }\n}\n`);
  // the outside host: a namespace behind a veth of the node namespace
  outside = s.netns('o').name;
  const [a, b] = [s.name('va'), s.name('vb')];
  sh(['ip', 'link', 'add', a, 'netns', node.node, 'type', 'veth', 'peer', 'name', b, 'netns', outside]);
  sh(['ip', '-n', node.node, 'addr', 'add', '198.18.5.1/24', 'dev', a]);
  sh(['ip', '-n', node.node, 'link', 'set', a, 'up']);
  sh(['ip', '-n', outside, 'addr', 'add', `${OUTSIDE}/24`, 'dev', b]);
  sh(['ip', '-n', outside, 'link', 'set', b, 'up']);
  sh(['ip', '-n', outside, 'route', 'add', '10.84.0.0/24', 'via', '198.18.5.1']);
  serve(s, outside, 8080);
  await listening(outside);
}, 90_000);
afterAll(() => s.dispose());

describe('egress after DNAT: judged on the backend pod', () => {
  it('without an egress policy the VIP reaches the backend (the path works)', async () => {
    expect(await connects(netnsOf('c0'), VIP, 80)).toBe(true);
  });

  it('allowing the backend\'s port 8080 lets the client reach the VIP', async () => {
    expect(await connects(netnsOf('c1'), VIP, 80)).toBe(true);
    expect(await connects(netnsOf('c1'), OUTSIDE)).toBe(false); // and nothing else
  });

  it('allowing the backend\'s named port lets the client reach the VIP', async () => {
    expect(await connects(netnsOf('c2'), VIP, 80)).toBe(true);
  });

  it('allowing only the VIP address and port denies it', async () => {
    expect(await connects(netnsOf('c3'), VIP, 80)).toBe(false);
    expect(await connects(netnsOf('c3'), node.pods.backend!.ip)).toBe(false);
  });
});

describe('egress leaving the cluster (ipBlock)', () => {
  it('without an egress policy the outside host answers (the route works)', async () => {
    expect(await connects(netnsOf('c0'), OUTSIDE)).toBe(true);
  });

  it('an ipBlock holding the outside address allows it, on the given port only', async () => {
    expect(await connects(netnsOf('c4'), OUTSIDE)).toBe(true);
    expect(await connects(netnsOf('c4'), node.pods.backend!.ip)).toBe(false); // not in the block
  });

  it('an except inside the ipBlock denies it', async () => {
    expect(await connects(netnsOf('c5'), OUTSIDE)).toBe(false);
  });
});
