// The upstream NetworkPolicy e2e truth tables (test/support/netpol-cases.ts, the table the unit
// tests read) in a real kernel, through the product path: 9 pods as network namespaces attached by
// the node's conflist (bridge or vxlan, then netpol) with agents that connect (TCP), echo (UDP) and
// count SCTP INITs; one `it` per upstream case asserting every pair's verdict, on four topologies
// built once each; between cases only the manifests in each node's objects directory (policies, and
// the labels update cases change) move, and `tscni policy sync` diffs them into the kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netpolCases, type Step } from '../support/netpol-cases.ts';
import { NetpolCluster, type Family, type ProbeSpec } from '../support/netpol-cluster.ts';
import { Scope } from '../support/scope.ts';

const CASE_NAMES = netpolCases().map(([name]) => name);

const TOPOLOGIES: [string, (s: Scope) => Promise<NetpolCluster>][] = [
  ['IPv4 pods on one node', (s) => NetpolCluster.oneNode(s, 4)],
  ['IPv6 pods on one node', (s) => NetpolCluster.oneNode(s, 6)],
  ['dual-stack pods on one node (both families probed)', (s) => NetpolCluster.oneNode(s, 'dual')],
  ['IPv4 pods spread over 3 vxlan nodes', (s) => NetpolCluster.threeVxlanNodes(s)],
];

/** As upstream, which re-probes until the matrix matches: a probe lost on a loaded machine is not a verdict. */
const ATTEMPTS = 3;

const label = (p: ProbeSpec) => `IPv${p.family} ${p.protocol}/${p.port} (rows from, columns to: x/a … z/c)`;

/**
 * Runs case `index`: per step, the policies for each probed family (they differ only where an
 * ipBlock names a pod's address) are applied, and all of that step's matrices are probed at once.
 */
async function runCase(c: NetpolCluster, index: number): Promise<void> {
  const stepsByFamily = new Map(c.families.map((f) => [f, netpolCases(c.addrOf(f))[index]![1]] as const));
  const stepCount = stepsByFamily.get(c.families[0]!)!.length;
  for (let i = 0; i < stepCount; i++) {
    const groups = new Map<string, { step: Step; families: Family[] }>();
    for (const [family, steps] of stepsByFamily) {
      const step = steps[i]!;
      const key = JSON.stringify([step.policies, step.model]);
      const group = groups.get(key) ?? { step, families: [] };
      group.families.push(family);
      groups.set(key, group);
    }
    for (const { step, families } of groups.values()) {
      await c.apply(step.policies, step.model);
      const specs = families.flatMap((family) => step.probes.map((p) => ({ family, port: p.port, protocol: p.protocol })));
      const expected = families.flatMap((family) => step.probes.map((p) => `${label({ family, ...p })}\n${p.expect.grid()}`));
      const want = `step ${i + 1}\n${expected.join('\n\n')}`;
      const measure = async () => `step ${i + 1}\n${(await c.probe(specs)).map((grid, k) => `${label(specs[k]!)}\n${grid}`).join('\n\n')}`;
      let got = await measure();
      for (let attempt = 2; got !== want && attempt <= ATTEMPTS; attempt++) {
        console.warn(`probe attempt ${attempt - 1} did not match, probing again:\n${got}`);
        got = await measure();
      }
      expect(got, `expected:\n${want}\n\nactual:\n${got}\n`).toBe(want);
    }
  }
}

for (const [topology, build] of TOPOLOGIES) {
  describe(`netpol e2e truth tables in the kernel: ${topology}`, () => {
    const s = new Scope();
    let cluster: NetpolCluster | undefined;
    beforeAll(async () => {
      cluster = await build(s);
    }, 120_000);
    afterAll(() => s.dispose());

    CASE_NAMES.forEach((name, index) => {
      it(name, () => runCase(cluster!, index));
    });
  });
}
