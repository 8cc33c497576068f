import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOrUndefined, writeConflist } from '../support/cni.ts';
import { CNITOOL, OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/**
 * The netpol plugin for real: a "node" namespace (the plugins and `tscni policy` run inside it with
 * `ip netns exec`) holding a bridge, pods in namespaces of their own attached by cnitool with
 * bridge + host-local + netpol, real TCP connects between them. Steps share one setup and run in
 * order; each asserts what it changed.
 *
 * Objects: namespaces x and y; pods x/a {pod: a}, x/b {pod: b}, y/c {pod: c}, all on node1.
 * Policies: x/deny-ingress (every pod of x isolated for ingress), x/allow-clients (x/a accepts
 * tcp/8080 from pods labelled role=client in any namespace), y/allow-all (every pod of y isolated,
 * all ingress allowed: only an unknown pod of y is denied).
 */
const SUBNET = '10.77.0.0/24';
const NODE = 'node1';

const s = new Scope();
let node: string;
let dir: string;
let objects: string;
let stateDir: string;
let conflist: string;
const pods: Record<string, { ns: string; ip: string; id: string }> = {};

const yaml = (cLabels: string) => `
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Namespace
metadata: {name: y}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: a, labels: {pod: a}}, spec: {nodeName: ${NODE}, containers: [{name: s, ports: [{name: http, containerPort: 8080}]}]}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: b, labels: {pod: b}}, spec: {nodeName: ${NODE}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: y, name: c, labels: ${cLabels}}, spec: {nodeName: ${NODE}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: deny-ingress}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: allow-clients}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]
    ports: [{port: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: y, name: allow-all}
spec: {podSelector: {}, ingress: [{}]}
`;

const inNode = (argv: string[], env: Record<string, string> = {}, input?: string) =>
  spawnSync('ip', ['netns', 'exec', node, ...argv], { env: { PATH: process.env.PATH!, ...env }, input, encoding: 'utf8' });

function cni(verb: 'add' | 'check' | 'del', name: string, ns: string, podNs: string) {
  const r = inNode([CNITOOL, verb, 'np', `/run/netns/${podNs}`], {
    NETCONFPATH: join(dir, 'conf'),
    CNI_PATH: OUR_BIN,
    CNI_CACHEDIR: join(dir, 'cache'),
    CNI_IFNAME: 'eth0',
    CNI_CONTAINERID: `c-${name}`,
    CNI_ARGS: `K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: jsonOrUndefined(r.stdout) };
}

/** A pod: its own namespace, attached through the whole chain; a TCP server on 8080 answering "ok". */
function addPod(name: string, ns: string) {
  const podNs = s.netns('p').name;
  const r = cni('add', name, ns, podNs);
  expect(r.status, r.stderr).toBe(0);
  const ip = (r.json.ips[0].address as string).split('/')[0]!;
  const server = spawn('ip', ['netns', 'exec', podNs, 'socat', 'TCP-LISTEN:8080,reuseaddr,fork', 'SYSTEM:echo ok'], { stdio: 'ignore' });
  s.defer(() => server.kill());
  pods[name] = { ns: podNs, ip, id: `c-${name}` };
  return pods[name]!;
}

/** Runs the netpol binary alone with a prevResult we make: a registration without an interface. */
function netpol(command: string, opts: { id: string; ns?: string; name?: string; ip?: string; extra?: Record<string, unknown> }) {
  const conf = {
    cniVersion: '1.1.0',
    name: 'np',
    type: 'netpol',
    objects,
    stateDir,
    nodeName: NODE,
    podSubnets: [SUBNET],
    ...(opts.ip ? { prevResult: { cniVersion: '1.1.0', ips: [{ address: `${opts.ip}/24` }] } } : {}),
    ...opts.extra,
  };
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: opts.id, CNI_IFNAME: 'eth0', CNI_NETNS: `/run/netns/${node}`, CNI_PATH: OUR_BIN };
  if (opts.ns) env.CNI_ARGS = `K8S_POD_NAMESPACE=${opts.ns}${opts.name ? `;K8S_POD_NAME=${opts.name}` : ''}`;
  const r = inNode([join(OUR_BIN, 'netpol')], env, JSON.stringify(conf));
  return { status: r.status, stderr: r.stderr, json: jsonOrUndefined(r.stdout) };
}

const policy = (...args: string[]) => inNode([join(OUR_BIN, 'tscni'), 'policy', ...args, '--conf', conflist]);

/** One TCP connect from pod `from` to `to`:8080 with a 1 s timeout. */
function connects(from: string, to: string): boolean {
  const r = tryRun(['ip', 'netns', 'exec', pods[from]!.ns, 'socat', '-T1', '-', `TCP:${pods[to]!.ip}:8080,connect-timeout=1`], '');
  return r.status === 0 && r.stdout.includes('ok');
}

const elements = (set: string): string => inNode(['nft', 'list', 'set', 'inet', 'tscni_policy', set]).stdout;
const mapElements = (set: string): string => inNode(['nft', 'list', 'map', 'inet', 'tscni_policy', set]).stdout;

beforeAll(() => {
  node = s.netns('nd').name;
  dir = s.tmpdir();
  objects = join(dir, 'objects');
  stateDir = join(dir, 'state');
  sh(['mkdir', '-p', objects]);
  writeFileSync(join(objects, 'cluster.yaml'), yaml('{pod: c}'));
  conflist = writeConflist(join(dir, 'conf'), {
    cniVersion: '1.0.0', // cnitool's libcni speaks up to 1.0.0; GC and STATUS are exec'd directly
    name: 'np',
    plugins: [
      { type: 'bridge', bridge: s.name('br'), isGateway: true, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: SUBNET }]] } },
      { type: 'netpol', objects, stateDir, nodeName: NODE, podSubnets: [SUBNET] },
    ],
  });
});
afterAll(() => s.dispose());

describe('netpol plugin in a node namespace', () => {
  it('ADD with no index ever written syncs itself, then programs the pod', () => {
    expect(existsSync(join(stateDir, 'index.json'))).toBe(false);
    const a = addPod('a', 'x');
    expect(existsSync(join(stateDir, 'index.json'))).toBe(true);
    expect(elements('registered-v4')).toContain(a.ip);
    expect(mapElements('ingress-ns-v4')).toContain(`${a.ip} : jump ns-x-ingress`);
  });

  it('denies and allows real TCP connects as the policies say', () => {
    addPod('b', 'x');
    addPod('c', 'y');
    expect(connects('b', 'a')).toBe(false); // x isolated; b is no client
    expect(connects('c', 'a')).toBe(false); // c is no client (yet)
    expect(connects('a', 'b')).toBe(false); // every pod of x is isolated for ingress
    expect(connects('a', 'c')).toBe(true); // y allows all ingress
    expect(connects('b', 'c')).toBe(true);
  });

  it('a label change in the directory and `tscni policy sync` let the new client in', () => {
    writeFileSync(join(objects, 'cluster.yaml'), yaml('{pod: c, role: client}'));
    const r = policy('sync', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ policies: 3, applied: 'diff' });
    expect(connects('c', 'a')).toBe(true);
    expect(connects('b', 'a')).toBe(false);
    const explained = JSON.parse(policy('explain', 'y/c', 'x/a', '8080/tcp', '--json').stdout);
    expect(explained).toMatchObject({ allowed: true, ingress: { allowedBy: [{ policy: 'x/allow-clients', rule: 0 }] } });
    expect(JSON.parse(policy('explain', 'x/b', 'x/a', '8080/tcp', '--json').stdout).allowed).toBe(false);
  });

  it('a pod whose object is unknown and that has no args.cni.labels is isolated (fail closed)', () => {
    const d = addPod('d', 'y');
    expect(connects('a', 'c')).toBe(true); // known pods of y: all ingress allowed
    expect(connects('a', 'd')).toBe(false); // d: in y's isolation map, in no target set
    expect(mapElements('ingress-ns-v4')).toContain(`${d.ip} : jump ns-y-ingress`);
    expect(inNode(['nft', 'list', 'chain', 'inet', 'tscni_policy', 'ns-y-ingress']).stdout).toMatch(/drop/);
  });

  it('DEL removes the pod\'s elements and its registration', () => {
    const d = pods.d!;
    const r = cni('del', 'd', 'y', d.ns);
    expect(r.status, r.stderr).toBe(0);
    expect(elements('registered-v4')).not.toContain(d.ip);
    expect(mapElements('ingress-ns-v4')).not.toContain(d.ip);
    expect(existsSync(join(stateDir, 'pods', 'c-d_eth0.json'))).toBe(false);
  });

  it('CHECK passes, then fails once an element is deleted by hand; sync --full repairs', () => {
    const a = pods.a!;
    expect(cni('check', 'a', 'x', a.ns).status).toBe(0);
    inNode(['nft', 'delete', 'element', 'inet', 'tscni_policy', 'registered-v4', `{ ${a.ip} }`]);
    const r = cni('check', 'a', 'x', a.ns);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`set registered-v4 lacks ${a.ip}`);
    expect(policy('sync', '--full').status).toBe(0);
    expect(cni('check', 'a', 'x', a.ns).status).toBe(0);
  });

  it('GC removes a registration not among the valid attachments, with its elements', () => {
    expect(netpol('ADD', { id: 'stale', ns: 'x', name: 'ghost', ip: '10.77.0.201' }).status).toBe(0);
    expect(elements('registered-v4')).toContain('10.77.0.201');
    const valid = Object.values(pods).filter((p) => p !== pods.d).map((p) => ({ containerID: p.id, ifname: 'eth0' }));
    const r = netpol('GC', { id: 'gc', extra: { 'cni.dev/valid-attachments': valid } });
    expect(r.status, r.stderr).toBe(0);
    expect(elements('registered-v4')).not.toContain('10.77.0.201');
    expect(elements('registered-v4')).toContain(pods.a!.ip);
    expect(existsSync(join(stateDir, 'pods', 'stale_eth0.json'))).toBe(false);
  });

  it('ADD flushes conntrack entries of the pod\'s address', () => {
    const planted = inNode(['conntrack', '-I', '-p', 'tcp', '-s', '10.77.0.202', '-d', pods.a!.ip, '--sport', '40000', '--dport', '8080', '--state', 'ESTABLISHED', '-t', '120', '-u', 'ASSURED']);
    expect(planted.status, planted.stderr).toBe(0);
    expect(inNode(['conntrack', '-L', '-s', '10.77.0.202']).stdout).toContain('dport=8080');
    expect(netpol('ADD', { id: 'ct', ns: 'y', name: 'ct', ip: '10.77.0.202', extra: { args: { cni: { labels: [{ key: 'pod', value: 'ct' }] } } } }).status).toBe(0);
    expect(inNode(['conntrack', '-L', '-s', '10.77.0.202']).stdout).not.toContain('dport=8080');
    expect(netpol('DEL', { id: 'ct' }).status).toBe(0);
  });

  it('with br_netfilter off, STATUS fails and an ADD that a policy selects fails; others pass', () => {
    const sysctl = (v: number) => inNode(['sysctl', '-qw', `net.bridge.bridge-nf-call-iptables=${v}`]);
    expect(sysctl(0).status).toBe(0);
    try {
      const status = netpol('STATUS', { id: 'st' });
      expect(status.status).toBe(1);
      expect(status.json).toMatchObject({ code: 50, msg: expect.stringContaining('bridge-nf-call-iptables') });
      const selected = netpol('ADD', { id: 'sel', ns: 'x', name: 'sel', ip: '10.77.0.203', extra: { args: { cni: { labels: [{ key: 'pod', value: 'sel' }] } } } });
      expect(selected.json).toMatchObject({ code: 50 });
      expect(existsSync(join(stateDir, 'pods', 'sel_eth0.json'))).toBe(false);
      expect(elements('registered-v4')).not.toContain('10.77.0.203');
      expect(netpol('ADD', { id: 'free', ns: 'z', name: 'free', ip: '10.77.0.204' }).status).toBe(0);
      expect(netpol('DEL', { id: 'free' }).status).toBe(0);
    } finally {
      sysctl(1);
    }
    expect(netpol('STATUS', { id: 'st' }).status).toBe(0);
  });

  it('tscni policy ls lists each policy and the pods it selects', () => {
    const rows = JSON.parse(policy('ls', '--json').stdout) as { policy: string; pods: string[] }[];
    expect(rows.find((r) => r.policy === 'x/deny-ingress')?.pods).toEqual(['a', 'b']);
    expect(rows.find((r) => r.policy === 'x/allow-clients')?.pods).toEqual(['a']);
    expect(readFileSync(join(stateDir, 'index.json'), 'utf8')).toContain('"x/a"');
  });
});
