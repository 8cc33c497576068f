import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOrUndefined } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/**
 * NetworkPolicy run in-process by bridge (its `policy` key, no netpol plugin in the chain): the pod
 * is registered after IPAM and before its interface exists. Bridge is exec'd directly inside a
 * "node" namespace; pods are namespaces of their own. Steps share one setup and run in order.
 *
 * Objects: namespace x; pods x/a {pod: a} (serves 8080), x/b {pod: b}, x/c {role: client}, all on
 * node1. Policies: x/deny-ingress (every pod of x isolated for ingress), x/allow-clients (x/a
 * accepts tcp/8080 from pods of x labelled role=client).
 */
const SUBNET = '10.78.0.0/24';
const NODE = 'node1';
const OBJECTS = `
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: a, labels: {pod: a}}, spec: {nodeName: ${NODE}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: b, labels: {pod: b}}, spec: {nodeName: ${NODE}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: c, labels: {role: client}}, spec: {nodeName: ${NODE}}}
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
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: 8080}]
`;

const s = new Scope();
let node: string;
let stateDir: string;
let conf: Record<string, unknown>;
let bridge: string;
const pods: Record<string, { ns: string; ip: string; id: string; result: unknown }> = {};

function bridgeCall(command: string, id: string, podNs: string, podName: string, extra: Record<string, string> = {}, body = conf) {
  const env = { PATH: process.env.PATH!, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: podNs ? `/run/netns/${podNs}` : '', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN, CNI_ARGS: `K8S_POD_NAMESPACE=x;K8S_POD_NAME=${podName}`, ...extra };
  const r = spawnSync('ip', ['netns', 'exec', node, join(OUR_BIN, 'bridge')], { env, input: JSON.stringify(body), encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: jsonOrUndefined(r.stdout) };
}

function addPod(name: string) {
  const podNs = s.netns('p').name;
  const id = `c-${name}`;
  const r = bridgeCall('ADD', id, podNs, name);
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const ip = (r.json.ips[0].address as string).split('/')[0]!;
  const server = spawn('ip', ['netns', 'exec', podNs, 'socat', 'TCP-LISTEN:8080,reuseaddr,fork', 'SYSTEM:echo ok'], { stdio: 'ignore' });
  s.defer(() => server.kill());
  pods[name] = { ns: podNs, ip, id, result: r.json };
  return pods[name]!;
}

function connects(from: string, to: string): boolean {
  const r = tryRun(['ip', 'netns', 'exec', pods[from]!.ns, 'socat', '-T1', '-', `TCP:${pods[to]!.ip}:8080,connect-timeout=1`], '');
  return r.status === 0 && r.stdout.includes('ok');
}

const inNode = (argv: string[]) => spawnSync('ip', ['netns', 'exec', node, ...argv], { encoding: 'utf8' });
/** Every element of the table as text (sets and maps), for "nothing of this address is left". */
const tableText = () => inNode(['nft', 'list', 'table', 'inet', 'tscni_policy']).stdout;
const registrations = () => (existsSync(join(stateDir, 'pods')) ? readdirSync(join(stateDir, 'pods')).sort() : []);
const veths = () => inNode(['ip', '-json', 'link', 'show', 'master', bridge]).stdout.trim();

beforeAll(() => {
  node = s.netns('nd').name;
  const dir = s.tmpdir();
  const objects = join(dir, 'objects');
  stateDir = join(dir, 'state');
  sh(['mkdir', '-p', objects]);
  writeFileSync(join(objects, 'cluster.yaml'), OBJECTS);
  bridge = s.name('br');
  conf = {
    cniVersion: '1.1.0',
    name: 'np-in',
    type: 'bridge',
    bridge,
    isGateway: true,
    ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: SUBNET }]] },
    policy: { objects, stateDir, nodeName: NODE },
  };
});
afterAll(() => s.dispose());

describe('bridge with "policy": NetworkPolicy in-process', () => {
  it('ADD registers each pod before its interface exists; real connects are judged', () => {
    const a = addPod('a');
    expect(registrations()).toEqual(['c-a_eth0.json']);
    // the guard holds the pod's subnet without podSubnets: its prefix came with the registration
    expect(inNode(['nft', 'list', 'set', 'inet', 'tscni_policy', 'guarded-v4']).stdout).toContain(SUBNET);
    expect(inNode(['nft', 'list', 'set', 'inet', 'tscni_policy', 'registered-v4']).stdout).toContain(a.ip);
    addPod('b');
    addPod('c');
    expect(connects('c', 'a')).toBe(true); // a client
    expect(connects('b', 'a')).toBe(false); // no client
    expect(connects('a', 'b')).toBe(false); // every pod of x is isolated for ingress
  });

  it('CHECK verifies the registration too; tscni policy finds the bridge\'s policy keys and repairs', () => {
    const a = pods.a!;
    const withPrev = { ...conf, prevResult: a.result };
    expect(bridgeCall('CHECK', a.id, a.ns, 'a', {}, withPrev).status).toBe(0);
    inNode(['nft', 'delete', 'element', 'inet', 'tscni_policy', 'registered-v4', `{ ${a.ip} }`]);
    const r = bridgeCall('CHECK', a.id, a.ns, 'a', {}, withPrev);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain(`set registered-v4 lacks ${a.ip}`);
    const conflist = join(s.tmpdir(), 'np-in.conflist');
    const { cniVersion, name, ...plugin } = conf;
    writeFileSync(conflist, JSON.stringify({ cniVersion, name, plugins: [plugin] }));
    const sync = inNode([join(OUR_BIN, 'tscni'), 'policy', 'sync', '--full', '--conf', conflist]);
    expect(sync.status, sync.stderr).toBe(0);
    expect(bridgeCall('CHECK', a.id, a.ns, 'a', {}, withPrev).status).toBe(0);
    // a table deleted by hand: a sync with nothing to change notices and replaces it
    inNode(['nft', 'delete', 'table', 'inet', 'tscni_policy']);
    const again = inNode([join(OUR_BIN, 'tscni'), 'policy', 'sync', '--json', '--conf', conflist]);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ applied: 'full' });
    expect(bridgeCall('CHECK', a.id, a.ns, 'a', {}, withPrev).status).toBe(0);
    expect(connects('c', 'a')).toBe(true);
    expect(connects('b', 'a')).toBe(false);
  });

  it.each(['unregister policy', 'remove registration', 'delete veth', 'commit'])('a fault at "%s" leaves no registration, element or veth behind', (fault) => {
    const before = { regs: registrations(), veths: veths() };
    const podNs = s.netns('f').name;
    const r = bridgeCall('ADD', 'c-fault', podNs, 'fault', { TSCNI_FAULT: fault });
    expect(r.status, r.stdout).not.toBe(0);
    expect(r.json?.msg).toContain(`injected fault at step "${fault}`);
    expect(registrations()).toEqual(before.regs);
    expect(veths()).toEqual(before.veths);
    const text = tableText();
    const used = new Set(Object.values(pods).map((p) => p.ip));
    for (let host = 2; host < 12; host++) {
      const ip = `10.78.0.${host}`;
      if (!used.has(ip)) expect(text, ip).not.toMatch(new RegExp(`\\b${ip.replaceAll('.', '\\.')}\\b`));
    }
  });

  it('DEL unregisters (elements and file), GC removes registrations not among the valid attachments', () => {
    const b = pods.b!;
    expect(bridgeCall('DEL', b.id, b.ns, 'b').status).toBe(0);
    expect(registrations()).toEqual(['c-a_eth0.json', 'c-c_eth0.json']);
    expect(tableText()).not.toContain(b.ip);
    const valid = [{ containerID: pods.a!.id, ifname: 'eth0' }];
    const gc = bridgeCall('GC', 'gc', '', 'gc', {}, { ...conf, 'cni.dev/valid-attachments': valid });
    expect(gc.status, gc.stdout + gc.stderr).toBe(0);
    expect(registrations()).toEqual(['c-a_eth0.json']);
    expect(tableText()).not.toContain(pods.c!.ip);
    expect(tableText()).toContain(pods.a!.ip);
  });

  it('a bad policy key is refused before anything happens (code 7, named)', () => {
    const r = bridgeCall('ADD', 'c-bad', s.netns('b').name, 'bad', {}, { ...conf, policy: { objects: 'relative/dir' } });
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^policy: invalid objects/) });
  });
});
