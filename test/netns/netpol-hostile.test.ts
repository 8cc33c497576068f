import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUR_BIN } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';
import { connects, NetpolNode, spawnIn } from '../support/netpol-node.ts';

/**
 * Hostile objects in the objects directory: each is dropped beside a working setup, `tscni policy
 * sync` runs, and the test asserts a log line naming the object and the reason, and real TCP
 * connects showing enforcement of everything else as it was. Each hostile policy is written so
 * that, were it applied, it would open something the good policies deny.
 *
 * Objects: namespaces x, y; pods x/a {pod: a} serving named port http (8080), x/b {pod: b},
 * y/c {pod: c, role: client}. x/deny-all isolates every pod of x for ingress; x/allow-client lets
 * role=client pods of any namespace reach x/a on http. So c→a passes, b→a does not, y is open.
 */
const NODE = 'node1';
const GOOD = `
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
- {apiVersion: v1, kind: Pod, metadata: {namespace: y, name: c, labels: {pod: c, role: client}}, spec: {nodeName: ${NODE}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: deny-all}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: allow-client}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]
    ports: [{port: http}]
`;

const np = (ns: string, name: string, spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: ns, name }, spec });
const manyLabels = (n: number, extra: Record<string, string> = {}) => ({ ...Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`])), ...extra });

const s = new Scope();
let node: NetpolNode;

/** The reachability the good objects define, between real pods. */
async function matrix() {
  const { a, b, c } = node.pods as Record<'a' | 'b' | 'c', { netns: string; ip: string }>;
  const [ca, ba, ac, bc] = await Promise.all([connects(c.netns, a.ip), connects(b.netns, a.ip), connects(a.netns, c.ip), connects(b.netns, c.ip)]);
  return { 'c→a': ca, 'b→a': ba, 'a→c': ac, 'b→c': bc };
}
const BASELINE = { 'c→a': true, 'b→a': false, 'a→c': true, 'b→c': true };

/** The `reason` of each JSON log line (one per line), else the line itself. */
function reasons(stderr: string): string {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        const o = JSON.parse(l) as { msg?: string; reason?: string };
        return `${o.msg}: ${o.reason ?? ''}`;
      } catch {
        return l;
      }
    })
    .join('\n');
}

/** `tscni policy sync`: exit 0 and the reasons it logged. */
async function sync(): Promise<string> {
  const r = await node.policy('sync');
  expect(r.status, r.stderr).toBe(0);
  return reasons(r.stderr);
}

/** Drops a file (it stays), syncs, expects a log line with every `expected` fragment. */
async function drop(file: string, text: string, expected: string[]): Promise<string> {
  node.write(file, text);
  const log = await sync();
  const line = log.split('\n').find((l) => expected.every((e) => l.includes(e)));
  expect(line, `no log line with ${JSON.stringify(expected)} in:\n${log}`).toBeDefined();
  return log;
}

beforeAll(async () => {
  node = new NetpolNode(s, { subnet: '10.79.0.0/24', nodeName: NODE });
  node.write('cluster.yaml', GOOD);
  await node.addPod('a', 'x');
  await node.addPod('b', 'x');
  await node.addPod('c', 'y');
  expect(await matrix()).toEqual(BASELINE);
}, 60_000);
afterAll(() => s.dispose());

describe('hostile objects leave enforcement of the others as it was', () => {
  it('bad selectors: an unknown operator, a bad label key, In without values', async () => {
    const yaml = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: bad-operator}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: Like, values: [a]}]}
  ingress: [{}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: bad-key}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {"bad key!": x}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: in-without-values}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In}]}
  ingress: [{}]
`;
    const log = await drop('bad-selectors.yaml', yaml, ['networkpolicy x/bad-operator', '"Like" is not a valid selector operator']);
    expect(log).toMatch(/networkpolicy x\/bad-key: spec\.ingress\[0\]\.from\[0\]\.podSelector\.matchLabels: label key "bad key!"/);
    expect(log).toMatch(/networkpolicy x\/in-without-values: spec\.podSelector\.matchExpressions\[0\]\.values: must be non-empty for operator In/);
    expect(await matrix()).toEqual(BASELINE);
  });

  it('bad CIDRs (JSON): a CIDR that does not parse, an except outside its cidr, a pod address', async () => {
    const objects = [
      np('x', 'bad-cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.79.0/8' } }] }] }),
      np('x', 'bad-except', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.79.0.0/24', except: ['192.0.2.0/24'] } }] }] }),
      { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'y', name: 'c' }, status: { podIPs: [{ ip: '10.79.0.999' }] } },
    ];
    const log = await drop('bad-cidrs.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }), ['networkpolicy x/bad-cidr', 'ipBlock.cidr: "10.79.0/8" is not a CIDR']);
    expect(log).toMatch(/networkpolicy x\/bad-except: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.except\[0\]: "192\.0\.2\.0\/24" must be a strict subset/);
    expect(log).toMatch(/pod y\/c: status\.podIPs\[0\]\.ip: "10\.79\.0\.999" is not an IP address/);
    expect(await matrix()).toEqual(BASELINE);
  });

  it('huge label sets: a pod claiming role=client among 5000 labels, a selector of 500 labels', async () => {
    const objects = [
      { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'x', name: 'b', labels: manyLabels(5000, { role: 'client' }) }, spec: { nodeName: NODE } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'z', labels: manyLabels(1000) } },
      np('x', 'huge-selector', { podSelector: { matchLabels: manyLabels(500) }, ingress: [{}] }),
    ];
    const log = await drop('huge.json', objects.map((o) => JSON.stringify(o)).join('\n---\n'), ['pod x/b', 'metadata.labels: 5001 labels (at most 64)']);
    expect(log).toMatch(/namespace z: metadata\.labels: 1000 labels \(at most 64\)/);
    expect(log).toMatch(/networkpolicy x\/huge-selector: spec\.podSelector\.matchLabels: 500 labels/);
    expect(await matrix()).toEqual(BASELINE); // b is still no client
  });

  it('a file that is not YAML at all, prose, and a document of an unknown kind', async () => {
    await drop('garbage.yaml', '\u0000\u0001{{{ ]]] : : \t- [', ['garbage.yaml', 'document 1']);
    await drop('notes.yaml', 'These are notes, not a manifest.\n', ['notes.yaml', 'not an object']);
    await drop('service.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {namespace: x, name: web}\nspec: {ports: [{port: 80}]}\n', ['service x/web', 'kind "Service" is not Namespace, Pod or NetworkPolicy']);
    expect(await matrix()).toEqual(BASELINE);
  });

  it('a NetworkPolicy with a duplicate name is refused; the first one stays in force', async () => {
    const dup = np('x', 'allow-client', { podSelector: {}, ingress: [{}] }); // would open all of x
    await drop('zz-duplicate.yaml', JSON.stringify(dup), ['networkpolicy x/allow-client', 'duplicate']);
    expect(await matrix()).toEqual(BASELINE);
  });

  it('an unknown protocol: the policy is kept and isolates the pods it selects', async () => {
    const odd = np('y', 'odd-protocol', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ ports: [{ protocol: 'ICMP', port: 8080 }] }] });
    const log = await drop('odd.json', JSON.stringify(odd), ['networkpolicy y/odd-protocol', 'spec.ingress[0].ports[0].protocol: "ICMP" is not TCP, UDP or SCTP']);
    expect(log).not.toMatch(/rejected/);
    expect(await matrix()).toEqual({ ...BASELINE, 'a→c': false, 'b→c': false });
    const ls = JSON.parse((await node.policy('ls', '--json')).stdout) as { policy: string; pods: string[] }[];
    expect(ls.find((p) => p.policy === 'y/odd-protocol')?.pods).toEqual(['c']);
    rmSync(join(node.objects, 'odd.json'));
    await sync(); // the file is gone: y is open again
    expect(await matrix()).toEqual(BASELINE);
  });

  it('a named port no pod serves allows nothing, without an error', async () => {
    const ghost = np('x', 'ghost-port', { podSelector: {}, ingress: [{ ports: [{ port: 'nosuch' }] }] });
    node.write('ghost.json', JSON.stringify(ghost));
    const log = await sync();
    expect(log).not.toContain('ghost-port');
    expect(await matrix()).toEqual(BASELINE); // b→a still denied: nothing serves "nosuch"
  });

  it('sync --watch logs a hostile object once, keeps enforcing, and still applies good changes', async () => {
    const watcher = spawnIn(s, node.node, [join(OUR_BIN, 'tscni'), 'policy', 'sync', '--watch', '--conf', node.conflist], ['ignore', 'ignore', 'pipe']);
    let log = '';
    let raw = '';
    watcher.stderr!.on('data', (b: Buffer) => {
      raw += b;
      log = reasons(raw);
    });
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 1500 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
      return what();
    };
    // the first sync logs the hostile files already there (ghost.json is valid: nothing of it)
    expect(await until(() => log.includes('networkpolicy x/allow-client: duplicate name')), raw).toBe(true);
    node.write('watch-bad.yaml', JSON.stringify(np('x', 'watch-bad', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['::/0'] } }] }] })));
    expect(await until(() => log.includes('networkpolicy x/watch-bad'))).toBe(true);
    expect(log).toMatch(/networkpolicy x\/watch-bad: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.except\[0\]: "::\/0" is not of the family/);
    expect(await matrix()).toEqual(BASELINE);
    // a good change still goes through the same watcher: b becomes a client
    node.write('cluster.yaml', GOOD.replace('labels: {pod: b}', 'labels: {pod: b, role: client}'));
    let m = await matrix();
    for (let i = 0; i < 50 && !m['b→a']; i++) m = await matrix();
    expect(m).toEqual({ ...BASELINE, 'b→a': true });
    expect(log.match(/networkpolicy x\/watch-bad/g)).toHaveLength(1);
  });
});
