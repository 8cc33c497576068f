import { parseIp } from '../net/ip.ts';
import type { Cluster } from './cluster.ts';
import type { ContainerPort, Direction, LabelSelector, Labels, PolicyRule } from './objects.ts';
import { isKnownProtocol, type Protocol } from './protocol.ts';
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
 *   membershipMatcher(index): (pod) => ElementChange[]   the same, for many pods (compile)
 *   rulePeersSet(namespace, rule): string | undefined    the peer set a policy rule matches (shared by equal rules)
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

type PeerPredicate = Omit<MembershipIndex['peers'][number], 'set'>;

/** A rule's pod-selecting peers as membership judges them (a podSelector alone: the policy's namespace). */
function peerPredicates(namespace: string, rule: PolicyRule): PeerPredicate[] {
  return rule.peers.flatMap((peer) =>
    peer.ipBlock ? [] : [{ ...(peer.namespaceSelector ? { namespaceSelector: peer.namespaceSelector } : { namespace }), ...(peer.podSelector ? { podSelector: peer.podSelector } : {}) }],
  );
}

/** The set holding a rule's peer pods, shared by every rule with the same peers; undefined when it has none (ipBlocks only, or no `from`/`to`). */
export function rulePeersSet(namespace: string, rule: PolicyRule): string | undefined {
  const predicates = peerPredicates(namespace, rule);
  return predicates.length ? peersSet(JSON.stringify(predicates)) : undefined;
}

export function membershipIndex(cluster: Cluster, node: string): MembershipIndex {
  const targets: MembershipIndex['targets'][number][] = [];
  const peers: MembershipIndex['peers'][number][] = [];
  const peerSets = new Set<string>();
  const named = new Map<string, MembershipIndex['namedPorts'][number]>();
  for (const p of [...cluster.policies.values()].sort(byKey)) {
    const id = policyId(p.namespace, p.name);
    targets.push({ set: targetsSet(id), namespace: p.namespace, podSelector: p.podSelector, isolates: p.policyTypes });
    for (const dir of p.policyTypes) {
      for (const rule of p[dir]) {
        const predicates = peerPredicates(p.namespace, rule);
        const set = predicates.length ? peersSet(JSON.stringify(predicates)) : undefined;
        if (set && !peerSets.has(set)) {
          peerSets.add(set);
          for (const predicate of predicates) peers.push({ set, ...predicate });
        }
        for (const port of rule.ports) {
          if (typeof port.port !== 'string' || !isKnownProtocol(port.protocol)) continue;
          const set = namedPortSet(port.port, port.protocol);
          named.set(set, { set, port: port.port, protocol: port.protocol });
        }
      }
    }
  }
  const namespaces = Object.fromEntries([...cluster.namespaces.values()].map((ns) => [ns.name, ns.labels]));
  return { version: 1, node, namespaces, targets, peers, namedPorts: [...named.values()].sort((a, b) => cmp(a.set, b.set)) };
}

export function podElements(index: MembershipIndex, pod: MemberPod): ElementChange[] {
  return membershipMatcher(index)(pod);
}

/**
 * podElements for many pods: the per-namespace work (which policies' targets, which peers'
 * namespace part holds) is done once per namespace, so a pod costs only its own selector checks.
 */
export function membershipMatcher(index: MembershipIndex): (pod: MemberPod) => ElementChange[] {
  const targetsByNs = groupBy(index.targets, (t) => t.namespace);
  const namedByPort = groupBy(index.namedPorts, (np) => `${np.port}/${np.protocol}`);
  const peersByNs = new Map<string, MembershipIndex['peers'][number][]>();
  const peersOf = (ns: string) => {
    let peers = peersByNs.get(ns);
    if (!peers) {
      const labels = index.namespaces[ns] ?? { 'kubernetes.io/metadata.name': ns };
      peers = index.peers.filter((p) => (p.namespaceSelector ? matchesSelector(p.namespaceSelector, labels) : p.namespace === ns));
      peersByNs.set(ns, peers);
    }
    return peers;
  };
  return (pod) => {
    if (pod.hostNetwork) return [];
    const { labels } = pod;
    const ownTargets = targetsByNs.get(pod.namespace) ?? [];
    const selectedBy = labels ? ownTargets.filter((t) => matchesSelector(t.podSelector, labels)) : [];
    const isolatedFor = (dir: Direction) => (labels ? selectedBy : ownTargets).some((t) => t.isolates.includes(dir));
    const peerSets = labels ? peersOf(pod.namespace).filter((p) => !p.podSelector || matchesSelector(p.podSelector, labels)) : [];
    const out = new Map<string, ElementChange>();
    const add = (set: string, element: string) => out.set(`${set} ${element}`, { set, element });
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
      for (const cp of pod.ports) {
        for (const np of cp.name ? (namedByPort.get(`${cp.name}/${cp.protocol}`) ?? []) : []) add(withFamily(np.set, f), `${text} . ${np.protocol.toLowerCase()} . ${cp.port}`);
      }
    }
    return [...out.values()].sort((a, b) => cmp(a.set, b.set) || cmp(a.element, b.element));
  };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name);
