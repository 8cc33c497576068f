// The upstream NetworkPolicy e2e truth tables (kubernetes test/e2e/network/netpol/network_policy.go),
// one `it` per case named after it, on the full 9-pod model: explain() must give exactly the
// expected matrix on IPv4 and on IPv6 pods, and a packet evaluator of compile()'s Ruleset must
// agree with explain() on every pair — one node IPv4, one node IPv6, and dual-stack spread over
// 3 nodes (both families).
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../lib/netpol/cluster.ts';
import { compile } from '../../lib/netpol/compile.ts';
import { explain, resolveEndpoint, type Endpoint } from '../../lib/netpol/explain.ts';
import { netpolCases, r, sctp, tcp, udp } from '../support/netpol-cases.ts';
import { clusterOf, evaluator, gridOf, modelObjects, v6Of, type Stack } from '../support/netpol-model.ts';

const CASES = netpolCases();
/** The same cases on IPv6 pods: the ipBlock cases name the pods' IPv6 addresses. */
const V6_CASES = netpolCases((pod) => v6Of(pod.split('/')[0]!, pod.split('/')[1]!));

const endpoint = (cluster: Cluster, pod: string, family?: 4 | 6): Endpoint => resolveEndpoint(cluster, pod, family) as Endpoint;
const NODES = ['n1', 'n2', 'n3'];
const spread = (ns: string, pod: string) => NODES[(ns.charCodeAt(0) + pod.charCodeAt(0)) % 3]!;

describe('netpol e2e truth tables: explain()', () => {
  CASES.forEach(([name], index) => {
    it(name, () => {
      for (const [stack, cases] of [[4, CASES], [6, V6_CASES]] as const) {
        for (const step of cases[index]![1]) {
          const cluster = clusterOf([...modelObjects({ ...step.model, stack }), ...step.policies]);
          for (const probe of step.probes) {
            const got = gridOf((f, t) => explain(cluster, endpoint(cluster, f), endpoint(cluster, t), probe.port, probe.protocol).allowed);
            const label = `IPv${stack} ${probe.protocol}/${probe.port}\n`;
            expect(label + got).toBe(label + probe.expect.grid());
          }
        }
      }
    });
  });
});

const LAYOUTS: { stack: Stack; nodeOf?: typeof spread; cases: typeof CASES }[] = [
  { stack: 4, cases: CASES },
  { stack: 6, cases: V6_CASES },
  { stack: 'dual', nodeOf: spread, cases: CASES },
];

describe('netpol e2e truth tables: compile() agrees with explain() packet by packet', () => {
  CASES.forEach(([name], index) => {
    it(name, () => {
      for (const layout of LAYOUTS) {
        for (const step of layout.cases[index]![1]) {
          const cluster = clusterOf([...modelObjects({ ...step.model, stack: layout.stack, nodeOf: layout.nodeOf }), ...step.policies]);
          const rulesets = new Map((layout.nodeOf ? NODES : ['n1']).map((n) => [n, evaluator(compile(cluster, n))]));
          const nodeOf = (pod: string) => cluster.pods.get(pod)!.nodeName!;
          for (const family of layout.stack === 'dual' ? ([4, 6] as const) : [layout.stack]) {
            for (const probe of [...step.probes, tcp(81, r()), udp(80, r()), sctp(81, r())]) {
              const judged = (f: string, t: string, by: 'explain' | 'compile') => {
                const from = endpoint(cluster, f, family);
                const to = endpoint(cluster, t, family);
                if (by === 'explain') return explain(cluster, from, to, probe.port, probe.protocol).allowed;
                const pkt = { src: from.ip, dst: to.ip, protocol: probe.protocol, port: probe.port };
                return [...new Set([nodeOf(f), nodeOf(t)])].every((n) => rulesets.get(n)!(pkt));
              };
              const label = `IPv${family} ${probe.protocol}/${probe.port} ${layout.nodeOf ? '3 nodes' : '1 node'}\n`;
              expect(label + gridOf((f, t) => judged(f, t, 'compile'))).toBe(label + gridOf((f, t) => judged(f, t, 'explain')));
            }
          }
        }
      }
    });
  });
});
