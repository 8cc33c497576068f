// The upstream NetworkPolicy e2e cases (kubernetes test/e2e/network/netpol/network_policy.go), each
// named after its upstream test, as steps of policies (and model changes) with the expected
// reachability matrix per port/protocol: one table read by the unit tests (explain, compile) and the
// kernel-level suite (test/netns/netpol-truth.test.ts), so the two cannot drift apart.
import { formatCidr, network, parseCidr } from '../../lib/net/ip.ts';
import type { Protocol } from '../../lib/netpol/objects.ts';
import { policy, Reachability, v4Of, type ModelOptions } from './netpol-model.ts';

const NS = 'kubernetes.io/metadata.name';
const sel = (matchLabels: Record<string, string>) => ({ matchLabels });
const expr = (key: string, operator: string, values: string[]) => ({ matchExpressions: [{ key, operator, values }] });
const ingressOnly = (podSelector: object, ...ingress: object[]) => ({ podSelector, policyTypes: ['Ingress'], ingress });
const egressOnly = (podSelector: object, ...egress: object[]) => ({ podSelector, policyTypes: ['Egress'], egress });

export interface Probe {
  port: number;
  protocol: Protocol;
  expect: Reachability;
}
export interface Step {
  policies: unknown[];
  model?: ModelOptions;
  probes: Probe[];
}

export const r = () => new Reachability();
export const tcp = (port: number, expect: Reachability): Probe => ({ port, protocol: 'TCP', expect });
export const udp = (port: number, expect: Reachability): Probe => ({ port, protocol: 'UDP', expect });
export const sctp = (port: number, expect: Reachability): Probe => ({ port, protocol: 'SCTP', expect });

const allowPort81FromY = (name: string, port: number, protocol: Protocol) =>
  policy('x', name, ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ [NS]: 'y' }) }], ports: [{ port, protocol }] }));
const nsYAndPodA = { namespaceSelector: sel({ [NS]: 'y' }), podSelector: sel({ pod: 'a' }) };
const hostCidr = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;
const largeCidrOf = (ip: string) => formatCidr({ ip: network(parseCidr(`${ip}/4`)!), prefix: 4 });

export type NetpolCase = [name: string, steps: Step[]];

/** A pod (`ns/pod`) to the address an ipBlock case names: the model's IPv4 address unless told. */
export type AddrOf = (pod: string) => string;
const modelAddr: AddrOf = (pod) => v4Of(pod.split('/')[0]!, pod.split('/')[1]!);

/** The cases, in upstream order; `addrOf` gives the pod addresses the ipBlock cases put in their CIDRs. */
export function netpolCases(addrOf: AddrOf = modelAddr): NetpolCase[] {
  return [
    ["should support a 'default-deny-ingress' policy", [{ policies: [policy('x', 'deny-ingress', ingressOnly({}))], probes: [tcp(80, r().expectPeer({}, { ns: 'x' }, false))] }]],
    [
      "should support a 'default-deny-all' policy",
      [
        {
          policies: [policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })],
          probes: [tcp(80, r().expectPeer({}, { ns: 'x' }, false).expectPeer({ ns: 'x' }, {}, false))],
        },
      ],
    ],
    [
      'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
      [{ policies: [policy('x', 'x-a-allows-x-b', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: sel({ pod: 'b' }) }] }))], probes: [tcp(80, r().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))] }],
    ],
    [
      'should enforce policy to allow ingress traffic for a target',
      [
        {
          policies: [policy('x', 'deny-all', ingressOnly({})), policy('x', 'allow-all-to-a', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: {}, namespaceSelector: {} }] }))],
          probes: [tcp(80, r().expectAllIngress('x/a', true).expectAllIngress('x/b', false).expectAllIngress('x/c', false))],
        },
      ],
    ],
    [
      'should enforce policy to allow ingress traffic from pods in all namespaces',
      [{ policies: [policy('x', 'allow-from-another-ns', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({}) }] }))], probes: [tcp(80, r())] }],
    ],
    [
      'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
      [
        {
          policies: [policy('x', 'allow-client-a-via-ns-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ [NS]: 'y' }) }] }))],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))],
        },
      ],
    ],
    [
      'should enforce policy based on PodSelector with MatchExpressions',
      [{ policies: [policy('x', 'x-a-allows-x-b', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: expr('pod', 'In', ['b']) }] }))], probes: [tcp(80, r().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))] }],
    ],
    [
      'should enforce policy based on NamespaceSelector with MatchExpressions',
      [
        {
          policies: [policy('x', 'allow-ns-y-match-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: expr(NS, 'In', ['y']) }] }))],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))],
        },
      ],
    ],
    [
      'should enforce policy based on PodSelector or NamespaceSelector',
      [
        {
          policies: [policy('x', 'allow-ns-y-match-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: expr(NS, 'NotIn', ['x']) }, { podSelector: sel({ pod: 'b' }) }] }))],
          probes: [tcp(80, r().expect('x/a', 'x/a', false).expect('x/c', 'x/a', false))],
        },
      ],
    ],
    [
      'should enforce policy based on PodSelector and NamespaceSelector',
      [
        {
          policies: [policy('x', 'allow-ns-y-podselector-and-nsselector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: expr(NS, 'NotIn', ['x']), podSelector: sel({ pod: 'b' }) }] }))],
          probes: [tcp(80, r().expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true))],
        },
      ],
    ],
    [
      'should enforce policy based on Multiple PodSelectors and NamespaceSelectors',
      [
        {
          policies: [policy('x', 'allow-ns-y-z-pod-b-c', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: expr(NS, 'NotIn', ['x']), podSelector: expr('pod', 'In', ['b', 'c']) }] }))],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expect('y/a', 'x/a', false).expect('z/a', 'x/a', false))],
        },
      ],
    ],
    [
      'should enforce policy based on any PodSelectors',
      [
        {
          policies: [policy('x', 'allow-ns-x-pod-b-c', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: sel({ pod: 'b' }) }, { podSelector: sel({ pod: 'c' }) }] }))],
          probes: [tcp(80, r().expectAllIngress('x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true))],
        },
      ],
    ],
    [
      'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
      [{ policies: [policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', ingressOnly(sel({ pod: 'a' }), { from: [nsYAndPodA] }))], probes: [tcp(80, r().expectAllIngress('x/a', false).expect('y/a', 'x/a', true))] }],
    ],
    [
      'should enforce policy based on Ports',
      [
        {
          policies: [allowPort81FromY('allow-client-a-via-ns-selector', 81, 'TCP')],
          probes: [tcp(81, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))],
        },
      ],
    ],
    [
      'should enforce multiple, stacked policies with overlapping podSelectors',
      [
        {
          policies: [allowPort81FromY('allow-client-a-via-ns-selector', 81, 'TCP')],
          probes: [tcp(81, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false)), tcp(80, r().expectAllIngress('x/a', false))],
        },
        {
          policies: [allowPort81FromY('allow-client-a-via-ns-selector', 81, 'TCP'), allowPort81FromY('allow-client-a-via-ns-selector-80', 80, 'TCP')],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))],
        },
      ],
    ],
    ['should support allow-all policy', [{ policies: [policy('x', 'allow-all', ingressOnly({}, {}))], probes: [tcp(80, r()), tcp(81, r())] }]],
    [
      'should allow ingress access on one named port',
      [{ policies: [policy('x', 'allow-all', ingressOnly({}, { ports: [{ port: 'serve-81-tcp' }] }))], probes: [tcp(81, r()), tcp(80, r().expectPeer({}, { ns: 'x' }, false))] }],
    ],
    [
      'should allow ingress access from namespace on one named port',
      [
        {
          policies: [policy('x', 'allow-client-a-via-ns-selector-80', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ [NS]: 'y' }) }], ports: [{ port: 'serve-80-tcp', protocol: 'TCP' }] }))],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false)), tcp(81, r().expectAllIngress('x/a', false))],
        },
      ],
    ],
    [
      'should allow egress access on one named port',
      [{ policies: [policy('x', 'allow-egress', egressOnly({}, { ports: [{ port: 'serve-80-tcp' }] }))], probes: [tcp(80, r()), tcp(81, r().expectPeer({ ns: 'x' }, {}, false))] }],
    ],
    [
      'should enforce updated policy',
      [
        { policies: [policy('x', 'allow-all-mutate-to-deny-all', ingressOnly({}, {}))], probes: [tcp(81, r())] },
        { policies: [policy('x', 'allow-all-mutate-to-deny-all', ingressOnly({}))], probes: [tcp(81, r().expectPeer({}, { ns: 'x' }, false))] },
      ],
    ],
    [
      'should allow ingress access from updated namespace',
      [
        { policies: [policy('x', 'allow-client-a-via-ns-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ ns2: 'updated' }) }] }))], probes: [tcp(80, r().expectAllIngress('x/a', false))] },
        {
          policies: [policy('x', 'allow-client-a-via-ns-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ ns2: 'updated' }) }] }))],
          model: { nsLabels: { y: { ns2: 'updated' } } },
          probes: [tcp(80, r().expectAllIngress('x/a', false).expectPeer({ ns: 'y' }, {}, true))],
        },
      ],
    ],
    [
      'should allow ingress access from updated pod',
      [
        { policies: [policy('x', 'allow-client-a-via-pod-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: sel({ pod: 'b', pod2: 'updated' }) }] }))], probes: [tcp(80, r().expectAllIngress('x/a', false))] },
        {
          policies: [policy('x', 'allow-client-a-via-pod-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ podSelector: sel({ pod: 'b', pod2: 'updated' }) }] }))],
          model: { podLabels: { 'x/b': { pod: 'b', pod2: 'updated' } } },
          probes: [tcp(80, r().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))],
        },
      ],
    ],
    [
      'should deny ingress from pods on other namespaces',
      [{ policies: [policy('x', 'deny-empty-policy', ingressOnly({}, { from: [{ podSelector: sel({}) }] }))], probes: [tcp(80, r().expectPeer({ ns: 'y' }, { ns: 'x' }, false).expectPeer({ ns: 'z' }, { ns: 'x' }, false))] }],
    ],
    [
      'should deny ingress access to updated pod',
      [
        { policies: [policy('x', 'deny-ingress-via-label-selector', ingressOnly(sel({ target: 'isolated' })))], probes: [tcp(80, r())] },
        { policies: [policy('x', 'deny-ingress-via-label-selector', ingressOnly(sel({ target: 'isolated' })))], model: { podLabels: { 'x/a': { pod: 'a', target: 'isolated' } } }, probes: [tcp(80, r().expectAllIngress('x/a', false))] },
      ],
    ],
    ['should deny egress from pods based on PodSelector', [{ policies: [policy('x', 'deny-egress-pod-a', egressOnly(sel({ pod: 'a' })))], probes: [tcp(80, r().expectAllEgress('x/a', false))] }]],
    ['should deny egress from all pods in a namespace', [{ policies: [policy('x', 'deny-egress-ns-x', egressOnly({}))], probes: [tcp(80, r().expectPeer({ ns: 'x' }, {}, false))] }]],
    [
      'should work with Ingress, Egress specified together',
      [
        {
          policies: [policy('x', 'allow-client-a-via-pod-selector', { podSelector: sel({ pod: 'a' }), policyTypes: ['Egress', 'Ingress'], ingress: [{ from: [{ podSelector: sel({ pod: 'b' }) }] }], egress: [{ ports: [{ port: 80 }] }] })],
          probes: [tcp(80, r().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)), tcp(81, r().expectAllIngress('x/a', false).expectAllEgress('x/a', false).expect('x/b', 'x/a', true))],
        },
      ],
    ],
    [
      'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)',
      [
        {
          policies: [
            policy('x', 'allow-to-ns-y-pod-a', egressOnly(sel({ pod: 'a' }), { to: [nsYAndPodA] })),
            policy('y', 'allow-from-xa-on-ya-match-selector', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ [NS]: 'x' }), podSelector: sel({ pod: 'a' }) }] })),
            policy('y', 'allow-from-xa-on-yb-match-selector', ingressOnly(sel({ pod: 'b' }), { from: [{ namespaceSelector: sel({ [NS]: 'x' }), podSelector: sel({ pod: 'a' }) }] })),
          ],
          probes: [
            tcp(80, r().expectPeer({ ns: 'x', pod: 'a' }, {}, false).expectPeer({}, { ns: 'y', pod: 'a' }, false).expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y', pod: 'a' }, true).expectPeer({}, { ns: 'y', pod: 'b' }, false)),
          ],
        },
      ],
    ],
    [
      'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector',
      [{ policies: [policy('x', 'allow-to-ns-y-pod-a', egressOnly(sel({ pod: 'a' }), { to: [nsYAndPodA] }))], probes: [tcp(80, r().expectAllEgress('x/a', false).expect('x/a', 'y/a', true))] }],
    ],
    [
      'should enforce ingress policy allowing any port traffic to a server on a specific protocol',
      [{ policies: [policy('x', 'allow-ingress-by-proto', ingressOnly(sel({ pod: 'a' }), { ports: [{ protocol: 'TCP' }] }))], probes: [tcp(80, r()), udp(80, r().expectPeer({}, { ns: 'x', pod: 'a' }, false))] }],
    ],
    [
      'should enforce multiple ingress policies with ingress allow-all policy taking precedence',
      [
        { policies: [policy('x', 'allow-ingress-port-80', ingressOnly({}, { ports: [{ port: 80 }] }))], probes: [tcp(81, r().expectPeer({}, { ns: 'x' }, false))] },
        { policies: [policy('x', 'allow-ingress-port-80', ingressOnly({}, { ports: [{ port: 80 }] })), policy('x', 'allow-ingress', ingressOnly({}, {}))], probes: [tcp(81, r())] },
      ],
    ],
    [
      'should enforce multiple egress policies with egress allow-all policy taking precedence',
      [
        { policies: [policy('x', 'allow-egress-port-80', egressOnly({}, { ports: [{ port: 80 }] }))], probes: [tcp(81, r().expectPeer({ ns: 'x' }, {}, false))] },
        { policies: [policy('x', 'allow-egress-port-80', egressOnly({}, { ports: [{ port: 80 }] })), policy('x', 'allow-egress', egressOnly({}, {}))], probes: [tcp(81, r())] },
      ],
    ],
    [
      'should stop enforcing policies after they are deleted',
      [
        { policies: [policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], probes: [tcp(80, r().expectPeer({ ns: 'x' }, {}, false).expectPeer({}, { ns: 'x' }, false))] },
        { policies: [], probes: [tcp(80, r())] },
      ],
    ],
    [
      'should allow egress access to server in CIDR block',
      [
        {
          policies: [policy('x', 'allow-client-a-via-cidr-egress-rule', egressOnly(sel({ pod: 'a' }), { to: [{ ipBlock: { cidr: hostCidr(addrOf('y/b')) } }] }))],
          probes: [tcp(80, r().expectAllEgress('x/a', false).expect('x/a', 'y/b', true))],
        },
      ],
    ],
    [
      'should enforce except clause while egress access to server in CIDR block',
      [
        {
          policies: [policy('x', 'allow-client-a-via-cidr-egress-rule', egressOnly(sel({ pod: 'a' }), { to: [{ ipBlock: { cidr: largeCidrOf(addrOf('x/b')), except: [hostCidr(addrOf('x/b'))] } }] }))],
          probes: [tcp(80, r().expect('x/a', 'x/b', false))],
        },
      ],
    ],
    [
      'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed',
      [
        {
          policies: [policy('x', 'allow-client-a-via-cidr-egress-rule', egressOnly(sel({ pod: 'a' }), { to: [{ ipBlock: { cidr: largeCidrOf(addrOf('x/b')), except: [hostCidr(addrOf('x/b'))] } }] }))],
          probes: [tcp(80, r().expect('x/a', 'x/b', false))],
        },
        {
          policies: [policy('x', 'allow-client-a-via-cidr-egress-rule', egressOnly(sel({ pod: 'a' }), { to: [{ ipBlock: { cidr: hostCidr(addrOf('x/b')) } }] }))],
          probes: [tcp(80, r().expectAllEgress('x/a', false).expect('x/a', 'x/b', true))],
        },
      ],
    ],
    [
      'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector',
      [
        { policies: [policy('x', 'allow-egress-for-target', egressOnly(sel({ pod: 'a' }), {}))], probes: [tcp(80, r())] },
        {
          policies: [policy('x', 'allow-egress-for-target', egressOnly(sel({ pod: 'a' }), {})), policy('x', 'deny-ingress-via-label-selector', ingressOnly(sel({ pod: 'a' })))],
          probes: [tcp(80, r().expectAllIngress('x/a', false))],
        },
      ],
    ],
    [
      "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
      [
        {
          policies: [policy('x', 'deny-ingress', ingressOnly({})), policy('x', 'allow-only-sctp-ingress-on-port-81', ingressOnly(sel({ pod: 'a' }), { ports: [{ port: 81, protocol: 'SCTP' }] }))],
          probes: [tcp(81, r().expectPeer({}, { ns: 'x' }, false))],
        },
      ],
    ],
    [
      "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
      [{ policies: [policy('x', 'allow-only-sctp-ingress-on-port-80', ingressOnly(sel({ pod: 'a' }), { ports: [{ port: 80, protocol: 'SCTP' }] }))], probes: [tcp(81, r().expectAllIngress('x/a', false))] }],
    ],
    [
      'should not allow access by TCP when a policy specifies only UDP',
      [{ policies: [policy('x', 'allow-only-udp-ingress-on-port-81', ingressOnly(sel({ pod: 'a' }), { ports: [{ port: 81, protocol: 'UDP' }] }))], probes: [tcp(81, r().expectAllIngress('x/a', false))] }],
    ],
    [
      'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label',
      [
        {
          policies: [policy('x', 'allow-client-a-via-ns-selector-for-immutable-ns-label', ingressOnly(sel({ pod: 'a' }), { from: [{ namespaceSelector: sel({ [NS]: 'y' }) }] }))],
          probes: [tcp(80, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))],
        },
      ],
    ],
    [
      'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label',
      [{ policies: [policy('x', 'allow-ns-y-match-selector-for-immutable-ns-label', egressOnly(sel({ pod: 'a' }), { to: [{ namespaceSelector: expr(NS, 'NotIn', ['y']) }] }))], probes: [tcp(80, r().expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y' }, false))] }],
    ],
    [
      'UDP: should support a default-deny-ingress policy',
      [{ policies: [policy('x', 'deny-all', ingressOnly({}))], probes: [udp(80, r().expectPeer({}, { ns: 'x' }, false))] }],
    ],
    [
      'UDP: should enforce policy based on Ports',
      [{ policies: [allowPort81FromY('allow-ingress-on-port-81-ns-x', 81, 'UDP')], probes: [udp(81, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))] }],
    ],
    [
      'UDP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
      [{ policies: [policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', ingressOnly(sel({ pod: 'a' }), { from: [nsYAndPodA] }))], probes: [udp(80, r().expectAllIngress('x/a', false).expect('y/a', 'x/a', true))] }],
    ],
    [
      'SCTP: should support a default-deny-ingress policy',
      [{ policies: [policy('x', 'deny-all', ingressOnly({}))], probes: [sctp(80, r().expectPeer({}, { ns: 'x' }, false))] }],
    ],
    [
      'SCTP: should enforce policy based on Ports',
      [{ policies: [allowPort81FromY('allow-ingress-on-port-81-ns-x', 81, 'SCTP')], probes: [sctp(81, r().expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false))] }],
    ],
    [
      'SCTP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
      [{ policies: [policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', ingressOnly(sel({ pod: 'a' }), { from: [nsYAndPodA] }))], probes: [sctp(80, r().expectAllIngress('x/a', false).expect('y/a', 'x/a', true))] }],
    ],
  ];
}
