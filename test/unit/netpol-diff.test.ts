// diffRuleset: churn is element-only, and applying diff(prev, next) to prev gives next — checked on a
// small model of the table that interprets the diff's nft lines (and refuses dangling references).
import { describe, expect, it } from 'vitest';
import { withObject, withoutObject, type Cluster } from '../../lib/netpol/cluster.ts';
import { compile } from '../../lib/netpol/compile.ts';
import { diffRuleset } from '../../lib/netpol/diff.ts';
import { validateObject, type ClusterObject } from '../../lib/netpol/objects.ts';
import { renderChainDecl, renderRule, renderSetDecl } from '../../lib/netpol/render.ts';
import { elementKey, type Ruleset } from '../../lib/netpol/ruleset.ts';
import { clusterOf, modelObjects, policy } from '../support/netpol-model.ts';

interface TableModel {
  sets: Map<string, { decl: string; map: boolean; elements: Map<string, string> }>;
  chains: Map<string, { decl: string; rules: string[] }>;
}

function modelOf(rs: Ruleset): TableModel {
  return {
    sets: new Map(rs.sets.map((s) => [s.name, { decl: renderSetDecl(s), map: s.map, elements: new Map(s.elements.map((e) => [elementKey(e), e])) }])),
    chains: new Map(rs.chains.map((c) => [c.name, { decl: renderChainDecl(c), rules: c.rules.map(renderRule) }])),
  };
}

const T = 'inet tscni_policy';
/** Applies the diff's lines one by one, as nft would, failing on anything nft would refuse. */
function applyDiff(model: TableModel, script: string): void {
  const referenced = (name: string) =>
    [...model.chains.values()].some((c) => c.rules.some((r) => r.includes(`@${name}`) || r.endsWith(`jump ${name}`))) ||
    [...model.sets.values()].some((s) => [...s.elements.values()].some((e) => e.endsWith(`: jump ${name}`)));
  const checkRefs = (text: string) => {
    for (const [, set] of text.matchAll(/@([a-z0-9.-]+)/g)) expect(model.sets.has(set!), `set ${set} exists`).toBe(true);
    for (const [, chain] of text.matchAll(/jump ([a-z0-9.-]+)/g)) expect(model.chains.has(chain!), `chain ${chain} exists`).toBe(true);
  };
  for (const line of script.split('\n').filter(Boolean)) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(new RegExp(`^add (set|map) ${T} (\\S+) \\{ (.*) \\}$`)))) {
      expect(model.sets.has(m[2]!)).toBe(false);
      model.sets.set(m[2]!, { decl: m[3]!, map: m[1] === 'map', elements: new Map() });
    } else if ((m = line.match(new RegExp(`^add chain ${T} (\\S+)(?: \\{ (.*) \\})?$`)))) {
      expect(model.chains.has(m[1]!)).toBe(false);
      model.chains.set(m[1]!, { decl: m[2] ?? '', rules: [] });
    } else if ((m = line.match(new RegExp(`^(add|delete) element ${T} (\\S+) \\{ (.*) \\}$`)))) {
      const set = model.sets.get(m[2]!)!;
      for (const e of m[3]!.split(', ')) {
        if (m[1] === 'add') {
          checkRefs(e);
          expect(set.elements.has(elementKey(e)), `${e} not yet in ${m[2]}`).toBe(false);
          set.elements.set(elementKey(e), e);
        } else {
          expect(set.elements.delete(e), `${e} in ${m[2]}`).toBe(true);
        }
      }
    } else if ((m = line.match(new RegExp(`^flush chain ${T} (\\S+)$`)))) {
      model.chains.get(m[1]!)!.rules = [];
    } else if ((m = line.match(new RegExp(`^add rule ${T} (\\S+) (.*)$`)))) {
      checkRefs(m[2]!);
      model.chains.get(m[1]!)!.rules.push(m[2]!);
    } else if ((m = line.match(new RegExp(`^delete chain ${T} (\\S+)$`)))) {
      expect(model.chains.get(m[1]!)!.rules, `${m[1]} flushed before delete`).toEqual([]);
      model.chains.delete(m[1]!);
      expect(referenced(m[1]!), `${m[1]} unreferenced`).toBe(false);
    } else if ((m = line.match(new RegExp(`^delete (set|map) ${T} (\\S+)$`)))) {
      model.sets.delete(m[2]!);
      expect(referenced(m[2]!), `${m[2]} unreferenced`).toBe(false);
    } else {
      throw new Error(`unexpected diff line: ${line}`);
    }
  }
}

const normal = (m: TableModel) => ({
  sets: [...m.sets].map(([n, s]) => [n, s.decl, [...s.elements.values()].sort()]).sort(),
  chains: [...m.chains].map(([n, c]) => [n, c.decl, c.rules]).sort(),
});
const obj = (raw: unknown): ClusterObject => {
  const v = validateObject(raw);
  if (!v.ok) throw new Error(v.reason);
  return v.object;
};
const pod = (ns: string, name: string, labels: Record<string, string>, ips: string[], node = 'n1') =>
  obj({ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: ns, name, labels }, spec: { nodeName: node, containers: [{ ports: [{ name: 'serve-80-tcp', containerPort: 80 }] }] }, status: { podIPs: ips.map((ip) => ({ ip })) } });
const namespace = (name: string, labels: Record<string, string>) => obj({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

const POLICIES = [
  policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  policy('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }], ports: [{ port: 'serve-80-tcp' }] }] }),
];
const base = () => clusterOf([...modelObjects({ stack: 'dual' }), ...POLICIES]);
const onlyElementLines = (script: string) => script.split('\n').filter(Boolean).every((l) => /^(add|delete) element inet tscni_policy \S+ \{ .+ \}$/.test(l));

function checkStep(prev: Cluster, next: Cluster, node = 'n1'): string {
  const a = compile(prev, node);
  const b = compile(next, node);
  const script = diffRuleset(a, b);
  expect(script.startsWith('add table')).toBe(false);
  const model = modelOf(a);
  applyDiff(model, script);
  expect(normal(model)).toEqual(normal(modelOf(b)));
  return script;
}

describe('diffRuleset', () => {
  it('pod add, pod remove and a pod label change are element changes only', () => {
    const prev = base();
    const added = checkStep(prev, withObject(prev, pod('x', 'd', { pod: 'a' }, ['10.0.1.9', 'fd00::1:9'])));
    expect(added).toContain('add element inet tscni_policy ingress-ns-v4 { 10.0.1.9 : jump ns-x-ingress }');
    expect(onlyElementLines(added)).toBe(true);
    const removed = checkStep(prev, withoutObject(prev, 'Pod', 'y/a'));
    expect(removed).toContain('delete element inet tscni_policy np-tcp-serve-80-tcp-v4 { 10.0.2.1 . tcp . 80 }');
    expect(onlyElementLines(removed)).toBe(true);
    const relabelled = checkStep(prev, withObject(prev, pod('x', 'b', { pod: 'a' }, ['10.0.1.2', 'fd00::1:2'])));
    expect(relabelled).toMatch(/^add element inet tscni_policy pol-[0-9a-f]{12}-targets-v4 \{ 10\.0\.1\.2 \}$/m);
    expect(onlyElementLines(relabelled)).toBe(true);
    const nsRelabelled = checkStep(prev, withObject(prev, namespace('z', { 'kubernetes.io/metadata.name': 'y' })));
    expect(onlyElementLines(nsRelabelled)).toBe(true);
  });

  it('nothing changed: an empty script', () => {
    expect(diffRuleset(compile(base(), 'n1'), compile(base(), 'n1'))).toBe('');
  });

  it('policy add and remove change chains and sets', () => {
    const prev = base();
    const added = checkStep(prev, withObject(prev, obj(policy('z', 'new', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }))));
    expect(added).toMatch(/^add set inet tscni_policy peers-[0-9a-f]{12}-v4 \{ type ipv4_addr; \}$/m);
    expect(added).toMatch(/^add chain inet tscni_policy ns-z-ingress$/m);
    expect(added).toMatch(/^add chain inet tscni_policy pol-[0-9a-f]{12}-ingress \{ comment "z\/new"; \}$/m);
    const removed = checkStep(prev, withoutObject(prev, 'NetworkPolicy', 'x/from-y'));
    expect(removed).toMatch(/^flush chain inet tscni_policy ns-x-ingress$/m);
    expect(removed).toMatch(/^delete chain inet tscni_policy pol-[0-9a-f]{12}-ingress$/m);
    expect(removed).toMatch(/^delete set inet tscni_policy np-tcp-serve-80-tcp-v6$/m);
  });

  it('without a previous ruleset: the full render', () => {
    expect(diffRuleset(undefined, compile(base(), 'n1'))).toMatch(/^add table inet tscni_policy\ndelete table inet tscni_policy\ntable inet tscni_policy \{/);
  });

  it('random cluster edits: applying diff(prev, next) to prev gives next', () => {
    for (const seed of [1, 2]) {
      const rand = mulberry32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const labelsOf = () => ({ pod: pick(['a', 'b', 'c']), ...(rand() < 0.3 ? { tier: pick(['web', 'db']) } : {}) });
      const selector = () => pick([{}, { matchLabels: { pod: pick(['a', 'b', 'c']) } }, { matchExpressions: [{ key: 'tier', operator: pick(['Exists', 'DoesNotExist']) }] }, { matchExpressions: [{ key: 'pod', operator: pick(['In', 'NotIn']), values: [pick(['a', 'b'])] }] }]);
      const peer = () => pick([{ podSelector: selector() }, { namespaceSelector: selector() }, { namespaceSelector: { matchLabels: { team: pick(['red', 'blue']) } }, podSelector: selector() }, { ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24'] } }, { ipBlock: { cidr: 'fd00::/64' } }]);
      const port = () => pick([{ port: 80 }, { port: 'serve-80-tcp' }, { protocol: 'UDP' }, { port: 80, endPort: 81, protocol: 'SCTP' }, { port: 81, protocol: 'ICMP' }]);
      const rule = () => ({ ...(rand() < 0.7 ? { from: [peer(), ...(rand() < 0.3 ? [peer()] : [])] } : {}), ...(rand() < 0.6 ? { ports: [port()] } : {}) });
      const randomPolicy = () => {
        const ns = pick(['x', 'y', 'z']);
        const types = pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
        const toEgress = (r: Record<string, unknown>) => (r.from ? { to: r.from, ...(r.ports ? { ports: r.ports } : {}) } : r);
        return obj(policy(ns, `p${Math.floor(rand() * 6)}`, { podSelector: selector(), policyTypes: types, ingress: [rule(), rule()].slice(0, 1 + Math.floor(rand() * 2)), egress: [toEgress(rule())] }));
      };
      const podNames = ['a', 'b', 'c', 'd'];
      let cluster = base();
      for (let step = 0; step < 60; step++) {
        const choice = Math.floor(rand() * 6);
        const ns = pick(['x', 'y', 'z']);
        const name = pick(podNames);
        const i = ['x', 'y', 'z'].indexOf(ns) + 1;
        const j = podNames.indexOf(name) + 1;
        let next: Cluster;
        let churnOnly = true;
        if (choice === 0) next = withObject(cluster, pod(ns, name, labelsOf(), pick([[`10.0.${i}.${j}`], [`10.0.${i}.${j}`, `fd00::${i}:${j}`], [`fd00::${i}:${j}`]]), pick(['n1', 'n2'])));
        else if (choice === 1) next = withoutObject(cluster, 'Pod', `${ns}/${name}`);
        else if (choice === 2) next = withObject(cluster, namespace(ns, rand() < 0.5 ? { team: pick(['red', 'blue']) } : {}));
        else if (choice === 3 || choice === 4) {
          next = withObject(cluster, randomPolicy());
          churnOnly = false;
        } else {
          next = withoutObject(cluster, 'NetworkPolicy', pick([...cluster.policies.keys(), 'x/none']));
          churnOnly = false;
        }
        const script = checkStep(cluster, next);
        if (churnOnly) expect(onlyElementLines(script), `step ${step}: churn is elements only`).toBe(true);
        cluster = next;
      }
    }
  }, 60_000);
});

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
