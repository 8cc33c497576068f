import { containsCidr, parseCidr, type Family } from '../net/ip.ts';
import type { Cluster } from './cluster.ts';
import { membershipIndex, membershipMatcher, rulePeersSet, type MemberPod, type MembershipIndex } from './membership.ts';
import type { Direction, NetworkPolicy, Pod, PolicyRule } from './objects.ts';
import { isKnownProtocol, type Protocol } from './protocol.ts';
import {
  elementKey,
  isolationMap,
  namedPortSet,
  namespaceChain,
  policyChain,
  policyId,
  targetsSet,
  withFamily,
  type Match,
  type NftChain,
  type NftSet,
  type PortRange,
  type Rule,
  type Ruleset,
  type SetType,
} from './ruleset.ts';

/**
 * Kubernetes objects in, the desired `inet tscni_policy` ruleset out. Pure.
 *
 * Public surface:
 *   compile(cluster, node): Ruleset                      the ruleset for node `node`
 *   compileWithIndex(cluster, node): { ruleset, index }  plus the MembershipIndex ADD reads
 *   memberPod(pod, node): MemberPod                      a Pod object as membership sees it
 *
 * Enforcement happens where the pod lives: a pod whose `spec.nodeName` is `node` is local, isolated
 * here (ingress for it as destination, egress as source) and put in its policies' target sets. Peer
 * and named-port sets hold pods of every node. Chains and set declarations depend on policies only;
 * pods, their labels and namespace labels only change set elements — so churn is element updates.
 *
 * Layout (see render.ts for the text):
 *   base chains `egress` (forward, filter - 1) and `ingress` (forward, filter): established/related
 *     and ICMPv6 ND accept, then `ip saddr vmap @egress-ns-v4` (resp. daddr/ingress maps)
 *   maps `{ingress,egress}-ns-v{4,6}`: isolated local pod address → jump ns-<ns>-<dir>
 *   chain `ns-<ns>-<dir>`: per policy of the namespace covering <dir>,
 *     `ip saddr @pol-<id>-targets-v4 jump pol-<id>-<dir>` (daddr for ingress), then `drop`
 *   chain `pol-<id>-<dir>` (comment "ns/name"): one accept rule per (peer alternative × port alternative)
 *   sets `pol-<id>-targets-v*`, `peers-<hash>-v*` (one per distinct set of peers, shared), `np-<proto>-<portname>-v*`
 */
export function compile(cluster: Cluster, node: string): Ruleset {
  return compileWithIndex(cluster, node).ruleset;
}

export function compileWithIndex(cluster: Cluster, node: string): { ruleset: Ruleset; index: MembershipIndex } {
  const index = membershipIndex(cluster, node);
  const policies = [...cluster.policies.values()].sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));

  const sets = new Map<string, { type: SetType; map: boolean; elements: Map<string, string> }>();
  const declare = (name: string, type: SetType, map = false) => sets.set(name, { type, map, elements: new Map() });
  for (const f of FAMILIES) {
    for (const dir of DIRECTIONS) declare(isolationMap(dir, f), addrType(f), true);
    for (const t of index.targets) declare(withFamily(t.set, f), addrType(f));
    for (const p of index.peers) declare(withFamily(p.set, f), addrType(f));
    for (const np of index.namedPorts) declare(withFamily(np.set, f), `${addrType(f)} . inet_proto . inet_service`);
  }
  const elementsOf = membershipMatcher(index);
  for (const pod of cluster.pods.values()) {
    for (const e of elementsOf(memberPod(pod, node))) addElement(sets.get(e.set), e.element);
  }

  const chains: NftChain[] = [baseChain('egress'), baseChain('ingress')];
  for (const dir of DIRECTIONS) {
    const covering = policies.filter((p) => p.policyTypes.includes(dir));
    for (const ns of new Set(covering.map((p) => p.namespace))) chains.push(namespaceChainOf(ns, dir, covering.filter((p) => p.namespace === ns)));
    for (const p of covering) chains.push(policyChainOf(p, dir));
  }

  const ruleset: Ruleset = {
    sets: [...sets].map(([name, s]): NftSet => ({ name, type: s.type, map: s.map, elements: [...s.elements.values()].sort() })).sort((a, b) => cmp(a.name, b.name)),
    chains: [...chains.slice(0, 2), ...chains.slice(2).sort((a, b) => cmp(a.name, b.name))],
  };
  return { ruleset, index };
}

export function memberPod(pod: Pod, node: string): MemberPod {
  return { namespace: pod.namespace, labels: pod.labels, ips: pod.ips, hostNetwork: pod.hostNetwork, ports: pod.ports, local: pod.nodeName === node };
}

/**
 * Two pods claiming one address (a stale object beside the pod that now has it) must not make the
 * transaction fail with conflicting map elements, nor let either namespace's policies decide for
 * the other: the address's isolation verdict becomes `drop` until the objects agree again.
 */
function addElement(set: { map: boolean; elements: Map<string, string> } | undefined, element: string): void {
  if (!set) return;
  const key = elementKey(element);
  const existing = set.elements.get(key);
  set.elements.set(key, set.map && existing !== undefined && existing !== element ? `${key} : drop` : element);
}

const FAMILIES: readonly Family[] = [4, 6];
const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];
const addrType = (f: Family): 'ipv4_addr' | 'ipv6_addr' => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');
/** The address of the pod a direction protects: the source for egress, the destination for ingress. */
const ownDir = (dir: Direction) => (dir === 'egress' ? 'saddr' : 'daddr');
const peerDir = (dir: Direction) => (dir === 'egress' ? 'daddr' : 'saddr');
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function baseChain(dir: Direction): NftChain {
  return {
    name: dir,
    hook: { priority: dir === 'egress' ? 'filter - 1' : 'filter' },
    rules: [
      { matches: [{ kind: 'ct-established' }], verdict: { kind: 'accept' } },
      { matches: [{ kind: 'icmpv6-nd' }], verdict: { kind: 'accept' } },
      ...FAMILIES.map((f): Rule => ({ matches: [], verdict: { kind: 'vmap', family: f, dir: ownDir(dir), map: isolationMap(dir, f) } })),
    ],
  };
}

function namespaceChainOf(ns: string, dir: Direction, policies: readonly NetworkPolicy[]): NftChain {
  const rules: Rule[] = [];
  for (const p of policies) {
    const id = policyId(p.namespace, p.name);
    for (const f of FAMILIES) {
      rules.push({ matches: [{ kind: 'addr-set', family: f, dir: ownDir(dir), set: withFamily(targetsSet(id), f) }], verdict: { kind: 'jump', chain: policyChain(id, dir) } });
    }
  }
  rules.push({ matches: [], verdict: { kind: 'drop' } });
  return { name: namespaceChain(ns, dir), rules };
}

function policyChainOf(p: NetworkPolicy, dir: Direction): NftChain {
  const id = policyId(p.namespace, p.name);
  const rules = p[dir].flatMap((rule) => ruleAlternatives(rule, dir, rulePeersSet(p.namespace, rule)));
  return { name: policyChain(id, dir), comment: `${p.namespace}/${p.name}`.slice(0, 127), rules };
}

/** Matches that hold together; `family` when one of them names an address family. */
interface Alternative {
  readonly family?: Family;
  readonly matches: readonly Match[];
}

/** One policy rule as accept rules: every peer alternative × every port alternative of a compatible family. */
function ruleAlternatives(rule: PolicyRule, dir: Direction, peers: string | undefined): Rule[] {
  const peerAlts = peerAlternatives(rule, dir, peers);
  const portAlts = portAlternatives(rule);
  const rules: Rule[] = [];
  for (const a of peerAlts) {
    for (const b of portAlts) {
      if (a.family && b.family && a.family !== b.family) continue;
      rules.push({ matches: [...a.matches, ...b.matches], verdict: { kind: 'accept' } });
    }
  }
  return rules;
}

function peerAlternatives(rule: PolicyRule, dir: Direction, peers: string | undefined): Alternative[] {
  if (rule.peers.length === 0) return [{ matches: [] }];
  const alts: Alternative[] = [];
  if (peers) {
    for (const f of FAMILIES) alts.push({ family: f, matches: [{ kind: 'addr-set', family: f, dir: peerDir(dir), set: withFamily(peers, f) }] });
  }
  for (const { ipBlock } of rule.peers) {
    if (!ipBlock) continue;
    const cidr = parseCidr(ipBlock.cidr)!;
    const unique = [...new Set(ipBlock.except)];
    const except = unique.filter((e) => !unique.some((o) => o !== e && containsCidr(parseCidr(o)!, parseCidr(e)!))).sort();
    alts.push({ family: cidr.ip.family, matches: [{ kind: 'cidr', family: cidr.ip.family, dir: peerDir(dir), cidr: ipBlock.cidr, except }] });
  }
  return alts;
}

/**
 * Port entries as alternatives: numbered ports of known protocols in one `l4proto . dport` set
 * (ranges merged: nft refuses overlapping intervals), protocol-only entries in one `l4proto` set,
 * each named port by its per-pod set. No `ports` = any; entries that all have unknown protocols
 * leave no alternative: the rule allows nothing.
 */
function portAlternatives(rule: PolicyRule): Alternative[] {
  if (rule.ports.length === 0) return [{ matches: [] }];
  const alts: Alternative[] = [];
  const known = rule.ports.filter((p): p is typeof p & { protocol: Protocol } => isKnownProtocol(p.protocol));
  const ranges = known.flatMap((p): PortRange[] => (typeof p.port === 'number' ? [{ protocol: p.protocol, first: p.port, last: p.endPort ?? p.port }] : []));
  if (ranges.length) alts.push({ matches: [{ kind: 'ports', entries: mergeRanges(ranges) }] });
  const protocols = [...new Set(known.filter((p) => p.port === undefined).map((p) => p.protocol))].sort();
  if (protocols.length) alts.push({ matches: [{ kind: 'l4proto', protocols }] });
  const named = [...new Set(known.flatMap((p) => (typeof p.port === 'string' ? [namedPortSet(p.port, p.protocol)] : [])))].sort();
  for (const set of named) {
    for (const f of FAMILIES) alts.push({ family: f, matches: [{ kind: 'named-ports', family: f, set: withFamily(set, f) }] });
  }
  return alts;
}

function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => cmp(a.protocol, b.protocol) || a.first - b.first);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.protocol === r.protocol && r.first <= last.last + 1) out[out.length - 1] = { ...last, last: Math.max(last.last, r.last) };
    else out.push(r);
  }
  return out;
}
