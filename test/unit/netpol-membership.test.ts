// podElements: what ADD puts in the kernel for one new pod equals what a full recompile would add.
import { describe, expect, it } from 'vitest';
import { withObject, withoutObject } from '../../lib/netpol/cluster.ts';
import { compile, compileWithIndex, memberPod } from '../../lib/netpol/compile.ts';
import { diffRuleset, renderElementAdds } from '../../lib/netpol/diff.ts';
import { podElements, type MembershipIndex } from '../../lib/netpol/membership.ts';
import { ALL_PODS, clusterOf, modelObjects, policy } from '../support/netpol-model.ts';

const NS = 'kubernetes.io/metadata.name';
const POLICIES = [
  policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  policy('x', 'a-from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { [NS]: 'y' } }, podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['c'] }] } }], ports: [{ port: 'serve-80-tcp' }] }] }),
  policy('y', 'egress-named', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }, { ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 'serve-81-udp', protocol: 'UDP' }, { port: 80 }] }] }),
  policy('z', 'from-b', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
];
const lines = (script: string) => new Set(script.split('\n').filter(Boolean));

describe('podElements', () => {
  for (const node of ['n1', 'n2']) {
    it(`a new pod's elements equal the element diff of a full recompile (${node === 'n1' ? 'local pods' : 'remote pods'})`, () => {
      const full = clusterOf([...modelObjects({ stack: 'dual', nodeOf: (ns, pod) => (pod === 'c' ? 'n2' : 'n1') }), ...POLICIES]);
      for (const key of ALL_PODS) {
        const without = withoutObject(full, 'Pod', key);
        const { ruleset, index } = compileWithIndex(without, node);
        const pod = full.pods.get(key)!;
        const fromIndex = renderElementAdds(podElements(index, memberPod(pod, node)));
        const fromRecompile = diffRuleset(ruleset, compile(full, node));
        expect(lines(fromIndex), key).toEqual(lines(fromRecompile));
        expect(fromIndex, key).not.toBe('');
      }
    });
  }

  it('works from the index read back from JSON, as ADD reads it', () => {
    const full = clusterOf([...modelObjects(), ...POLICIES]);
    const { index } = compileWithIndex(withoutObject(full, 'Pod', 'x/a'), 'n1');
    const readBack = JSON.parse(JSON.stringify(index)) as MembershipIndex;
    const pod = memberPod(full.pods.get('x/a')!, 'n1');
    expect(podElements(readBack, pod)).toEqual(podElements(index, pod));
  });

  it('a pod with unknown labels fails closed: isolated where its namespace has policies, in no allow set', () => {
    const { index } = compileWithIndex(clusterOf([...modelObjects(), ...POLICIES]), 'n1');
    const unknown = (namespace: string) => podElements(index, { namespace, labels: undefined, ips: ['10.9.0.1'], hostNetwork: false, ports: [], local: true });
    expect(unknown('x')).toEqual([
      { set: 'egress-ns-v4', element: '10.9.0.1 : jump ns-x-egress' },
      { set: 'ingress-ns-v4', element: '10.9.0.1 : jump ns-x-ingress' },
    ]);
    expect(unknown('z')).toEqual([{ set: 'ingress-ns-v4', element: '10.9.0.1 : jump ns-z-ingress' }]);
    const free = clusterOf(modelObjects());
    expect(podElements(compileWithIndex(free, 'n1').index, { namespace: 'x', labels: undefined, ips: ['10.9.0.1'], hostNetwork: false, ports: [], local: true })).toEqual([]);
  });

  it('a hostNetwork pod contributes nothing', () => {
    const { index } = compileWithIndex(clusterOf([...modelObjects(), ...POLICIES]), 'n1');
    expect(podElements(index, { namespace: 'x', labels: { pod: 'a' }, ips: ['192.0.2.1'], hostNetwork: true, ports: [{ name: 'serve-80-tcp', port: 80, protocol: 'TCP' }], local: true })).toEqual([]);
  });

  it('the namespace labels come from the index (a namespace the index does not hold has only its name label)', () => {
    const cluster = withObject(clusterOf([...modelObjects(), ...POLICIES]), { kind: 'Namespace', name: 'y', labels: { [NS]: 'y', team: 'red' } });
    const { index } = compileWithIndex(cluster, 'n1');
    expect(index.namespaces.y).toEqual({ [NS]: 'y', team: 'red' });
    const elsewhere = podElements(index, { namespace: 'w', labels: { pod: 'a' }, ips: ['10.9.0.2'], hostNetwork: false, ports: [], local: false });
    expect(elsewhere.map((e) => e.set)).toEqual([expect.stringMatching(/^peers-[0-9a-f]{12}-v4$/)]);
  });
});
