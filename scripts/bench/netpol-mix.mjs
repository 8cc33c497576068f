// The NetworkPolicy mix, generated deterministically: 20 namespaces, 1,000 pods (50 per
// namespace, 50 of them on this node), 200 policies (10 per namespace) cycling through the shapes of
// the upstream e2e cases — default deny, pod selectors, namespace selectors, both ANDed with
// matchExpressions, numbered ports with endPort, named ports, a protocol-only port, ipBlocks with
// except, allow-all, egress. Pods `app-0` accept tcp/5201 and 8080 from pods labelled role=client
// of their namespace, and every pod may send to those ports: the throughput and connection rounds
// pass through the policy chains, not around them.
export const NODE = 'node1';
export const NAMESPACES = 20;
export const PODS_PER_NS = 50;
export const POLICIES_PER_NS = 10;
/** Pods of this node: the first 50 of the cluster's 10.200.0.0/16, on node1's 10.200.1.0/24. */
export const LOCAL_SUBNET = '10.200.1.0/24';

const ns = (i) => `ns-${String(i).padStart(2, '0')}`;
const TEAMS = ['red', 'green', 'blue', 'gold'];
const TIERS = ['frontend', 'backend', 'db'];

/** Where pod `n` (0..999) lives and its address: every 20th pod on node1, the others on node2..node20. */
export function podAddress(n) {
  const local = n % 20 === 0;
  return local ? { node: NODE, ip: `10.200.1.${10 + n / 20}` } : { node: `node${2 + (n % 19)}`, ip: `10.200.${2 + (n % 19)}.${10 + Math.floor(n / 19)}` };
}

function pod(n) {
  const i = Math.floor(n / PODS_PER_NS);
  const j = n % PODS_PER_NS;
  const { node, ip } = podAddress(n);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: ns(i), name: `p-${j}`, labels: { app: `app-${j % 10}`, tier: TIERS[j % 3], pod: `p-${j}`, ...(j % 7 === 0 ? { role: 'client' } : {}) } },
    spec: {
      nodeName: node,
      containers: [{ name: 'c', ports: [{ name: 'serve-80-tcp', containerPort: 80 }, { name: 'serve-81-tcp', containerPort: 81 }, { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' }] }],
    },
    status: { podIPs: [{ ip }] },
  };
}

/** Policy `k` (0..9) of namespace `i`: the shapes of the upstream cases, parameterised by i. */
function policy(i, k) {
  const meta = { namespace: ns(i), name: `pol-${k}` };
  const spec = [
    () => ({ podSelector: {} }), // default deny ingress
    () => ({ podSelector: { matchLabels: { app: 'app-0' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 5201 }, { port: 8080 }, { port: 'serve-80-tcp' }] }] }),
    () => ({ podSelector: { matchLabels: { tier: 'backend' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: TEAMS[i % 4] } } }], ports: [{ port: 'serve-81-tcp' }] }] }),
    () => ({
      podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'db'] }] },
      ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] } }], ports: [{ port: 80, endPort: 90 }] }],
    }),
    () => ({ podSelector: { matchLabels: { tier: 'db' } }, policyTypes: ['Egress'] }), // default deny egress
    () => ({ podSelector: { matchLabels: { tier: 'db' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.200.${i}.0/24`] } }], ports: [{ port: 53, protocol: 'UDP' }] }] }),
    () => ({ podSelector: { matchLabels: { tier: 'frontend' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }], ports: [{ port: 'serve-81-udp', protocol: 'UDP' }, { port: 5201 }, { port: 8080 }] }] }),
    () => ({ podSelector: { matchLabels: { app: `app-${i % 10}` } }, ingress: [{ from: [{ ipBlock: { cidr: `192.168.${i}.0/24` } }], ports: [{ protocol: 'UDP' }] }] }),
    () => ({ podSelector: { matchLabels: { tier: 'frontend' } }, ingress: [{}] }), // allow all to frontends
    () => ({
      podSelector: { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] },
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'role', operator: 'Exists' }] } }], ports: [{ port: 'serve-81-tcp' }, { port: 80, protocol: 'SCTP' }] }],
    }),
  ][k]();
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta, spec };
}

/** The mix as three List documents (JSON, as a watcher of the API server would write them). */
export function netpolMix() {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns(i), labels: { team: TEAMS[i % 4], env: i % 2 ? 'dev' : 'prod' } } }));
  const pods = Array.from({ length: NAMESPACES * PODS_PER_NS }, (_, n) => pod(n));
  const policies = Array.from({ length: NAMESPACES * POLICIES_PER_NS }, (_, n) => policy(Math.floor(n / POLICIES_PER_NS), n % POLICIES_PER_NS));
  const list = (items) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  return { 'namespaces.json': list(namespaces), 'pods.json': list(pods), 'policies.json': list(policies), pods };
}
