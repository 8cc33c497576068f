import { parseIp } from '../net/ip.ts';
import type { Cluster } from './cluster.ts';
import { isKnownProtocol, type ContainerPort, type Direction, type LabelSelector, type Labels, type Protocol } from './objects.ts';
import { isolationMap, namedPortSet, namespaceChain, peersSet, policyId, targetsSet, withFamily, type ElementChange } from './ruleset.ts';
import { matchesSelector } from './selector.ts';

/**
 * Which set and map elements one pod contributes, from predicates alone: what the plugin's ADD
 * needs to put ONE pod into the applied ruleset (one `nft -f`) without reading the source. `sync`
 * writes the index beside the ruleset it applied; compile fills every set through the same
 * `podElements`, so the two cannot disagree. Pure.
 *
 * Public surface:
 *   interface MembershipIndex (JSON-safe)        namespaces' labels + every set's predicate
 *   interface MemberPod                          what ADD knows of its pod (`labels` undefined = unknown)
 *   membershipIndex(cluster, node): MembershipIndex
 *   podElements(index, pod): ElementChange[]     sorted, deduplicated
 *
 * A pod whose labels are unknown (no Pod object, no `args.cni.labels`) fails closed: it is put in
 * its namespace's isolation maps for every direction some policy of the namespace covers, and in no
 * target or peer set, so nothing is allowed to or from it until sync learns its labels.
 */
export interface MembershipIndex {
  readonly version: 1;
  /** Pods whose `spec.nodeName` is this are local: isolated and in target sets here. */
  readonly node: string;
  readonly namespaces: Readonly<Record<string, Labels>>;
  /** One per policy: the pods it selects (its namespace, its podSelector) and the directions it isolates. */
  readonly targets: readonly { readonly set: string; readonly namespace: string; readonly podSelector: LabelSelector; readonly isolates: readonly Direction[] }[];
  /**
   * One per pod-selecting peer: `namespace` (podSelector alone: the policy's namespace) or
   * `namespaceSelector`, and an optional `podSelector`. Peers of one rule share a set.
   */
  readonly peers: readonly { readonly set: string; readonly namespace?: string; readonly namespaceSelector?: LabelSelector; readonly podSelector?: LabelSelector }[];
  /** Sets of `address . protocol . port` for every pod serving a container port of this name and protocol. */
  readonly namedPorts: readonly { readonly set: string; readonly port: string; readonly protocol: Protocol }[];
}

export interface MemberPod {
  readonly namespace: string;
  /** Undefined when not known yet: fail closed (see above). */
  readonly labels: Labels | undefined;
  readonly ips: readonly string[];
  readonly hostNetwork: boolean;
  readonly ports: readonly ContainerPort[];
  /** On the node the index was made for (ADD: always). */
  readonly local: boolean;
}

export function membershipIndex(cluster: Cluster, node: string): MembershipIndex {
  const targets: MembershipIndex['targets'][number][] = [];
  const peers: MembershipIndex['peers'][number][] = [];
  const named = new Map<string, MembershipIndex['namedPorts'][number]>();
  for (const p of [...cluster.policies.values()].sort(byKey)) {
    const id = policyId(p.namespace, p.name);
    targets.push({ set: targetsSet(id), namespace: p.namespace, podSelector: p.podSelector, isolates: p.policyTypes });
    for (const dir of p.policyTypes) {
      p[dir].forEach((rule, r) => {
        for (const peer of rule.peers) {
          if (peer.ipBlock) continue;
          peers.push({
            set: peersSet(id, dir, r),
            ...(peer.namespaceSelector ? { namespaceSelector: peer.namespaceSelector } : { namespace: p.namespace }),
            ...(peer.podSelector ? { podSelector: peer.podSelector } : {}),
          });
        }
        for (const port of rule.ports) {
          if (typeof port.port !== 'string' || !isKnownProtocol(port.protocol)) continue;
          const set = namedPortSet(port.port, port.protocol);
          named.set(set, { set, port: port.port, protocol: port.protocol });
        }
      });
    }
  }
  const namespaces = Object.fromEntries([...cluster.namespaces.values()].map((ns) => [ns.name, ns.labels]));
  return { version: 1, node, namespaces, targets, peers, namedPorts: [...named.values()].sort((a, b) => cmp(a.set, b.set)) };
}

export function podElements(index: MembershipIndex, pod: MemberPod): ElementChange[] {
  if (pod.hostNetwork) return [];
  const out = new Set<string>();
  const add = (set: string, element: string) => out.add(`${set}\n${element}`);
  const { labels } = pod;
  const nsLabels = index.namespaces[pod.namespace] ?? { 'kubernetes.io/metadata.name': pod.namespace };
  const ownTargets = index.targets.filter((t) => t.namespace === pod.namespace);
  const selectedBy = labels ? ownTargets.filter((t) => matchesSelector(t.podSelector, labels)) : [];
  const isolatedFor = (dir: Direction) => (labels ? selectedBy : ownTargets).some((t) => t.isolates.includes(dir));
  const peerSets = labels
    ? index.peers.filter(
        (p) =>
          (p.namespaceSelector ? matchesSelector(p.namespaceSelector, nsLabels) : p.namespace === pod.namespace) &&
          (!p.podSelector || matchesSelector(p.podSelector, labels)),
      )
    : [];
  for (const text of pod.ips) {
    const ip = parseIp(text);
    if (!ip) continue;
    const f = ip.family;
    if (pod.local) {
      for (const dir of ['ingress', 'egress'] as const) {
        if (isolatedFor(dir)) add(isolationMap(dir, f), `${text} : jump ${namespaceChain(pod.namespace, dir)}`);
      }
      for (const t of selectedBy) add(withFamily(t.set, f), text);
    }
    for (const p of peerSets) add(withFamily(p.set, f), text);
    for (const np of index.namedPorts) {
      for (const cp of pod.ports) {
        if (cp.name === np.port && cp.protocol === np.protocol) add(withFamily(np.set, f), `${text} . ${np.protocol.toLowerCase()} . ${cp.port}`);
      }
    }
  }
  return [...out].sort().map((line) => {
    const [set, element] = line.split('\n') as [string, string];
    return { set, element };
  });
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name);
