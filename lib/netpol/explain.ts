import { contains, formatIp, parseCidr, parseIp, type Family } from '../net/ip.ts';
import { isSelectable, namespaceLabels, type Cluster } from './cluster.ts';
import type { Direction, NetworkPolicy, Pod, PolicyPeer, PolicyPort } from './objects.ts';
import { isKnownProtocol, type Protocol } from './protocol.ts';
import { matchesSelector } from './selector.ts';

/**
 * The verdict for one connection, judged from the objects by the Kubernetes semantics directly
 * (independent of compile, so tests can hold the two against each other), with the policy and rule
 * that allow each side or why it is denied. Pure.
 *
 * Public surface:
 *   explain(cluster, from, to, port, protocol): Explanation
 *   resolveEndpoint(cluster, text, family?): Endpoint | string     `ns/pod` or an address; string = why not
 *   interface Endpoint { ip, pod? }     an address, and the pod owning it if any
 *   interface Explanation { allowed, egress: SideVerdict, ingress: SideVerdict }
 *   interface SideVerdict { allowed, isolated, policies, allowedBy, reason }
 *
 * Egress is judged for the source pod, ingress for the destination pod; a side that is not a
 * selectable pod (an outside address, a hostNetwork pod) is never isolated.
 */
export interface Endpoint {
  readonly ip: string;
  readonly pod?: Pod;
}

export interface SideVerdict {
  readonly allowed: boolean;
  /** Some policy of the pod's namespace covering this direction selects it. */
  readonly isolated: boolean;
  /** Those policies, `namespace/name`. */
  readonly policies: readonly string[];
  /** The rules that allow the connection: policy `namespace/name` and index in its ingress/egress list. */
  readonly allowedBy: readonly { readonly policy: string; readonly rule: number }[];
  readonly reason: string;
}

export interface Explanation {
  readonly allowed: boolean;
  readonly egress: SideVerdict;
  readonly ingress: SideVerdict;
}

export function explain(cluster: Cluster, from: Endpoint, to: Endpoint, port: number, protocol: Protocol): Explanation {
  const egress = judge(cluster, 'egress', from, to, port, protocol);
  const ingress = judge(cluster, 'ingress', to, from, port, protocol);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/** `ns/pod` (the pod's address of `family`, else its first) or an address (and the pod holding it). */
export function resolveEndpoint(cluster: Cluster, text: string, family?: Family): Endpoint | string {
  const ip = parseIp(text);
  if (ip) {
    const canonical = formatIp(ip);
    const pod = [...cluster.pods.values()].find((p) => p.ips.includes(canonical));
    return pod ? { ip: canonical, pod } : { ip: canonical };
  }
  const pod = cluster.pods.get(text);
  if (!pod) return `no pod ${text} (expected namespace/pod or an address)`;
  const address = pod.ips.find((a) => !family || parseIp(a)!.family === family) ?? pod.ips[0];
  if (!address) return `pod ${text} has no address`;
  return { ip: address, pod };
}

/** One side: `self` is the pod whose policies judge, `peer` the other end. */
function judge(cluster: Cluster, dir: Direction, self: Endpoint, peer: Endpoint, port: number, protocol: Protocol): SideVerdict {
  const pod = self.pod;
  if (!pod || !isSelectable(pod)) {
    return { allowed: true, isolated: false, policies: [], allowedBy: [], reason: pod ? 'hostNetwork pods are never isolated' : 'not a pod: not isolated' };
  }
  const selecting = [...cluster.policies.values()]
    .filter((p) => p.namespace === pod.namespace && p.policyTypes.includes(dir) && matchesSelector(p.podSelector, pod.labels))
    .sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  const policies = selecting.map(keyOf);
  if (selecting.length === 0) return { allowed: true, isolated: false, policies, allowedBy: [], reason: `no ${dir} policy selects ${pod.namespace}/${pod.name}` };
  const destination = dir === 'egress' ? peer : self;
  const allowedBy = selecting.flatMap((p) =>
    p[dir].flatMap((rule, i) => {
      const peerOk = rule.peers.length === 0 || rule.peers.some((q) => peerMatches(cluster, p, q, peer));
      const portOk = rule.ports.length === 0 || rule.ports.some((q) => portMatches(q, destination, port, protocol));
      return peerOk && portOk ? [{ policy: keyOf(p), rule: i }] : [];
    }),
  );
  const reason = allowedBy.length
    ? `allowed by ${allowedBy.map((a) => `${a.policy} ${dir}[${a.rule}]`).join(', ')}`
    : `isolated for ${dir} by ${policies.join(', ')}; no rule allows ${protocol.toLowerCase()}/${port} ${dir === 'egress' ? 'to' : 'from'} ${describeEndpoint(peer)}`;
  return { allowed: allowedBy.length > 0, isolated: true, policies, allowedBy, reason };
}

function peerMatches(cluster: Cluster, policy: NetworkPolicy, peer: PolicyPeer, other: Endpoint): boolean {
  if (peer.ipBlock) {
    const ip = parseIp(other.ip)!;
    return contains(parseCidr(peer.ipBlock.cidr)!, ip) && !peer.ipBlock.except.some((e) => contains(parseCidr(e)!, ip));
  }
  const pod = other.pod;
  if (!pod || !isSelectable(pod)) return false;
  const nsOk = peer.namespaceSelector ? matchesSelector(peer.namespaceSelector, namespaceLabels(cluster, pod.namespace)) : pod.namespace === policy.namespace;
  return nsOk && (!peer.podSelector || matchesSelector(peer.podSelector, pod.labels));
}

/**
 * A named port matches when the destination pod serves a port of that name and protocol with this
 * number; a hostNetwork pod's ports are not resolved (it is in no set, as for selectors).
 */
function portMatches(entry: PolicyPort, destination: Endpoint, port: number, protocol: Protocol): boolean {
  if (!isKnownProtocol(entry.protocol) || entry.protocol !== protocol) return false;
  if (entry.port === undefined) return true;
  if (typeof entry.port === 'number') return port >= entry.port && port <= (entry.endPort ?? entry.port);
  const pod = destination.pod;
  return !!pod && isSelectable(pod) && pod.ports.some((cp) => cp.name === entry.port && cp.protocol === protocol && cp.port === port);
}

const keyOf = (p: NetworkPolicy) => `${p.namespace}/${p.name}`;
const describeEndpoint = (e: Endpoint) => (e.pod ? `${e.pod.namespace}/${e.pod.name} (${e.ip})` : e.ip);
