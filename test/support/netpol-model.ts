// The upstream e2e model (namespaces x, y, z; pods a, b, c; ports 80/81 over TCP/UDP/SCTP) as raw
// manifests, the upstream Reachability truth-table helpers, and a tiny packet evaluator of a Ruleset
// (the model, not nft text): shared by the netpol unit tests and the kernel-level suite.
import { expect } from 'vitest';
import { contains, parseCidr, parseIp } from '../../lib/net/ip.ts';
import { loadCluster, type Cluster } from '../../lib/netpol/cluster.ts';
import type { Protocol } from '../../lib/netpol/objects.ts';
import type { Match, NftChain, Ruleset, Verdict } from '../../lib/netpol/ruleset.ts';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export const ALL_PODS = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));

export type Stack = 4 | 6 | 'dual';
export interface ModelOptions {
  stack?: Stack;
  /** Node of each pod; default all on `n1`. */
  nodeOf?: (ns: string, pod: string) => string;
  podLabels?: Record<string, Record<string, string>>;
  nsLabels?: Record<string, Record<string, string>>;
  /** Each pod's status.podIPs; default the model's addresses for `stack`. */
  ipsOf?: (ns: string, pod: string) => string[];
}

export const v4Of = (ns: string, pod: string) => `10.0.${NAMESPACES.indexOf(ns as never) + 1}.${PODS.indexOf(pod as never) + 1}`;
export const v6Of = (ns: string, pod: string) => `fd00::${NAMESPACES.indexOf(ns as never) + 1}:${PODS.indexOf(pod as never) + 1}`;

export function modelObjects(o: ModelOptions = {}): unknown[] {
  const stack = o.stack ?? 4;
  const out: unknown[] = [];
  for (const ns of NAMESPACES) {
    out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: o.nsLabels?.[ns] ?? {} } });
    for (const pod of PODS) {
      const ips = o.ipsOf?.(ns, pod) ?? [...(stack !== 6 ? [v4Of(ns, pod)] : []), ...(stack !== 4 ? [v6Of(ns, pod)] : [])];
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: ns, name: pod, labels: o.podLabels?.[`${ns}/${pod}`] ?? { pod } },
        spec: {
          nodeName: o.nodeOf?.(ns, pod) ?? 'n1',
          containers: [80, 81].flatMap((port) =>
            (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
              name: `cont-${port}-${protocol.toLowerCase()}`,
              ports: [{ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol }],
            })),
          ),
        },
        status: { podIPs: ips.map((ip) => ({ ip })) },
      });
    }
  }
  return out;
}

export function policy(namespace: string, name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}

export function clusterOf(raws: unknown[]): Cluster {
  const { cluster, rejected } = loadCluster(raws);
  expect(rejected).toEqual([]);
  return cluster;
}

/** Upstream's Reachability: starts all-allowed; a Peer with no namespace/pod matches everything. */
export interface Peer {
  ns?: string;
  pod?: string;
}
export class Reachability {
  readonly allowed = new Map<string, boolean>();
  constructor() {
    for (const f of ALL_PODS) for (const t of ALL_PODS) this.allowed.set(`${f}>${t}`, true);
  }
  expect(from: string, to: string, ok: boolean): this {
    this.allowed.set(`${from}>${to}`, ok);
    return this;
  }
  expectPeer(from: Peer, to: Peer, ok: boolean): this {
    const m = (p: Peer, pod: string) => (!p.ns || pod.startsWith(`${p.ns}/`)) && (!p.pod || pod.endsWith(`/${p.pod}`));
    for (const f of ALL_PODS) for (const t of ALL_PODS) if (m(from, f) && m(to, t)) this.expect(f, t, ok);
    return this;
  }
  expectAllIngress(pod: string, ok: boolean): this {
    return this.expectPeer({}, { ns: pod.split('/')[0], pod: pod.split('/')[1] }, ok);
  }
  expectAllEgress(pod: string, ok: boolean): this {
    return this.expectPeer({ ns: pod.split('/')[0], pod: pod.split('/')[1] }, {}, ok);
  }
  /** The grid upstream prints: one row per source, `.` allowed, `X` denied, `-` self (ignored). */
  grid(): string {
    return ALL_PODS.map((f) => `${f} ${ALL_PODS.map((t) => (f === t ? '-' : this.allowed.get(`${f}>${t}`) ? '.' : 'X')).join('')}`).join('\n');
  }
}

export function gridOf(judge: (from: string, to: string) => boolean): string {
  const r = new Reachability();
  for (const f of ALL_PODS) for (const t of ALL_PODS) if (f !== t) r.expect(f, t, judge(f, t));
  return r.grid();
}

export interface Packet {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
}

/**
 * Judges a NEW packet (no conntrack state) through a Ruleset as nft would: base chains in priority
 * order (`filter - 1` before `filter`), accept ends a base chain, drop ends the packet, a jump's
 * chain falls back to its caller, base chains' policy is accept.
 */
export function evaluator(rs: Ruleset): (pkt: Packet) => boolean {
  const sets = new Map(rs.sets.map((s) => [s.name, new Map(s.elements.map((e) => (s.map ? (e.split(' : ') as [string, string]) : [e, e])))]));
  const chains = new Map(rs.chains.map((c) => [c.name, c]));
  const bases = rs.chains.filter((c) => c.hook).sort((a, b) => (a.hook!.priority === 'filter - 1' ? -1 : 0) - (b.hook!.priority === 'filter - 1' ? -1 : 0));
  return (pkt) => judgePacket(sets, chains, bases, pkt);
}

function judgePacket(sets: Map<string, Map<string, string>>, chains: Map<string, NftChain>, bases: NftChain[], pkt: Packet): boolean {
  const src = parseIp(pkt.src)!;
  const dst = parseIp(pkt.dst)!;
  const addr = (dir: 'saddr' | 'daddr') => (dir === 'saddr' ? src : dst);
  const text = (dir: 'saddr' | 'daddr') => (dir === 'saddr' ? pkt.src : pkt.dst);
  const proto = pkt.protocol.toLowerCase();
  const holds = (m: Match): boolean => {
    switch (m.kind) {
      case 'ct-established':
      case 'icmpv6-nd':
        return false;
      case 'addr-set':
        return addr(m.dir).family === m.family && sets.get(m.set)!.has(text(m.dir));
      case 'cidr':
        return addr(m.dir).family === m.family && contains(parseCidr(m.cidr)!, addr(m.dir)) && !m.except.some((e) => contains(parseCidr(e)!, addr(m.dir)));
      case 'l4proto':
        return m.protocols.includes(pkt.protocol);
      case 'ports':
        return m.entries.some((e) => e.protocol === pkt.protocol && pkt.port >= e.first && pkt.port <= e.last);
      case 'named-ports':
        return dst.family === m.family && sets.get(m.set)!.has(`${pkt.dst} . ${proto} . ${pkt.port}`);
    }
  };
  const run = (name: string): 'accept' | 'drop' | 'continue' => {
    for (const rule of chains.get(name)!.rules) {
      if (!rule.matches.every(holds)) continue;
      const v: Verdict = rule.verdict;
      if (v.kind === 'accept' || v.kind === 'drop') return v.kind;
      let target: string | undefined;
      if (v.kind === 'jump') target = v.chain;
      else if (addr(v.dir).family === v.family) {
        const value = sets.get(v.map)!.get(text(v.dir));
        if (value === 'drop') return 'drop';
        target = value?.replace(/^jump /, '');
      }
      if (target === undefined) continue;
      const r = run(target);
      if (r !== 'continue') return r;
    }
    return 'continue';
  };
  return bases.every((c) => run(c.name) !== 'drop');
}
