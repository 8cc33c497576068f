// compile() + renderRuleset() golden nft text for small clusters of the upstream e2e model.
import { describe, expect, it } from 'vitest';
import { compile } from '../../lib/netpol/compile.ts';
import { renderRuleset } from '../../lib/netpol/render.ts';
import { policyId, type Ruleset } from '../../lib/netpol/ruleset.ts';
import { clusterOf, modelObjects, policy, type ModelOptions } from '../support/netpol-model.ts';

const NS = 'kubernetes.io/metadata.name';
const sel = (matchLabels: Record<string, string>) => ({ matchLabels });

/** The model restricted to `pods` (namespaces x, y, z always), plus policies and extra objects. */
function rulesetOf(pods: string[], policies: unknown[], opts: ModelOptions & { extra?: unknown[] } = {}): Ruleset {
  const model = modelObjects(opts).filter((o) => {
    const { kind, metadata } = o as { kind: string; metadata: { namespace: string; name: string } };
    return kind !== 'Pod' || pods.includes(`${metadata.namespace}/${metadata.name}`);
  });
  return compile(clusterOf([...model, ...policies, ...(opts.extra ?? [])]), 'n1');
}
const elementsOf = (rs: Ruleset, set: string) => rs.sets.find((s) => s.name === set)?.elements;
const chainText = (rs: Ruleset, chain: string) => {
  const lines = renderRuleset(rs).split('\n');
  const start = lines.indexOf(`  chain ${chain} {`);
  return lines.slice(start + 1, lines.indexOf('  }', start)).map((l) => l.trim());
};
const id = (ns: string, name: string) => policyId(ns, name);
/** The peer set (base name) a policy chain's rules match: named by the peers, shared by equal rules. */
const peersOf = (rs: Ruleset, chain: string) => /@(peers-[0-9a-f]{12})-v[46]/.exec(chainText(rs, chain).join('\n'))![1]!;

describe('compile + render', () => {
  it('default-deny-ingress: the whole table', () => {
    const rs = rulesetOf(['x/a', 'y/a'], [policy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] })]);
    expect(renderRuleset(rs)).toMatchInlineSnapshot(`
      "add table inet tscni_policy
      delete table inet tscni_policy
      table inet tscni_policy {
        map egress-ns-v4 {
          type ipv4_addr : verdict;
        }
        map egress-ns-v6 {
          type ipv6_addr : verdict;
        }
        map ingress-ns-v4 {
          type ipv4_addr : verdict;
          elements = { 10.0.1.1 : jump ns-x-ingress }
        }
        map ingress-ns-v6 {
          type ipv6_addr : verdict;
        }
        set pol-c83b1fcdd028-targets-v4 {
          type ipv4_addr;
          elements = { 10.0.1.1 }
        }
        set pol-c83b1fcdd028-targets-v6 {
          type ipv6_addr;
        }
        chain egress {
          type filter hook forward priority filter - 1; policy accept;
          ct state established,related accept
          icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept
          ip saddr vmap @egress-ns-v4
          ip6 saddr vmap @egress-ns-v6
        }
        chain ingress {
          type filter hook forward priority filter; policy accept;
          ct state established,related accept
          icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept
          ip daddr vmap @ingress-ns-v4
          ip6 daddr vmap @ingress-ns-v6
        }
        chain ns-x-ingress {
          ip daddr @pol-c83b1fcdd028-targets-v4 jump pol-c83b1fcdd028-ingress
          ip6 daddr @pol-c83b1fcdd028-targets-v6 jump pol-c83b1fcdd028-ingress
          drop
        }
        chain pol-c83b1fcdd028-ingress {
          comment "x/deny-ingress";
        }
      }
      "
    `);
  });

  it('default-deny-all: the whole table', () => {
    const rs = rulesetOf(['x/a', 'y/a'], [policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]);
    expect(renderRuleset(rs)).toMatchInlineSnapshot(`
      "add table inet tscni_policy
      delete table inet tscni_policy
      table inet tscni_policy {
        map egress-ns-v4 {
          type ipv4_addr : verdict;
          elements = { 10.0.1.1 : jump ns-x-egress }
        }
        map egress-ns-v6 {
          type ipv6_addr : verdict;
        }
        map ingress-ns-v4 {
          type ipv4_addr : verdict;
          elements = { 10.0.1.1 : jump ns-x-ingress }
        }
        map ingress-ns-v6 {
          type ipv6_addr : verdict;
        }
        set pol-8cba0f0f736b-targets-v4 {
          type ipv4_addr;
          elements = { 10.0.1.1 }
        }
        set pol-8cba0f0f736b-targets-v6 {
          type ipv6_addr;
        }
        chain egress {
          type filter hook forward priority filter - 1; policy accept;
          ct state established,related accept
          icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept
          ip saddr vmap @egress-ns-v4
          ip6 saddr vmap @egress-ns-v6
        }
        chain ingress {
          type filter hook forward priority filter; policy accept;
          ct state established,related accept
          icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept
          ip daddr vmap @ingress-ns-v4
          ip6 daddr vmap @ingress-ns-v6
        }
        chain ns-x-egress {
          ip saddr @pol-8cba0f0f736b-targets-v4 jump pol-8cba0f0f736b-egress
          ip6 saddr @pol-8cba0f0f736b-targets-v6 jump pol-8cba0f0f736b-egress
          drop
        }
        chain ns-x-ingress {
          ip daddr @pol-8cba0f0f736b-targets-v4 jump pol-8cba0f0f736b-ingress
          ip6 daddr @pol-8cba0f0f736b-targets-v6 jump pol-8cba0f0f736b-ingress
          drop
        }
        chain pol-8cba0f0f736b-egress {
          comment "x/deny-all";
        }
        chain pol-8cba0f0f736b-ingress {
          comment "x/deny-all";
        }
      }
      "
    `);
  });

  it('pod and namespace selector in one peer (AND) vs in two peers (OR)', () => {
    const and = rulesetOf(['x/a', 'x/b', 'y/a', 'y/b', 'z/a'], [policy('x', 'p', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: sel({ [NS]: 'y' }), podSelector: sel({ pod: 'a' }) }] }] })]);
    expect(elementsOf(and, `${peersOf(and, `pol-${id('x', 'p')}-ingress`)}-v4`)).toEqual(['10.0.2.1']);
    const or = rulesetOf(['x/a', 'x/b', 'y/a', 'y/b', 'z/a'], [policy('x', 'p', { podSelector: sel({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: sel({ [NS]: 'y' }) }, { podSelector: sel({ pod: 'a' }) }] }] })]);
    expect(elementsOf(or, `${peersOf(or, `pol-${id('x', 'p')}-ingress`)}-v4`)).toEqual(['10.0.1.1', '10.0.2.1', '10.0.2.2']);
    expect(chainText(or, `pol-${id('x', 'p')}-ingress`)).toEqual([
      'comment "x/p";',
      `ip saddr @${peersOf(or, `pol-${id('x', 'p')}-ingress`)}-v4 accept`,
      `ip6 saddr @${peersOf(or, `pol-${id('x', 'p')}-ingress`)}-v6 accept`,
    ]);
  });

  it('rules with equal peers share one peer set; a podSelector alone differs per namespace', () => {
    const peers = { ingress: [{ from: [{ namespaceSelector: sel({ [NS]: 'y' }), podSelector: sel({ pod: 'a' }) }] }] };
    const own = { ingress: [{ from: [{ podSelector: sel({ pod: 'a' }) }] }] };
    const rs = rulesetOf(['x/a', 'y/a', 'z/a'], [
      policy('x', 'p', { podSelector: {}, ...peers }),
      policy('z', 'q', { podSelector: sel({ pod: 'a' }), ...peers }),
      policy('x', 'own', { podSelector: {}, ...own }),
      policy('z', 'own', { podSelector: {}, ...own }),
    ]);
    expect(peersOf(rs, `pol-${id('x', 'p')}-ingress`)).toBe(peersOf(rs, `pol-${id('z', 'q')}-ingress`));
    expect(elementsOf(rs, `${peersOf(rs, `pol-${id('x', 'p')}-ingress`)}-v4`)).toEqual(['10.0.2.1']);
    expect(peersOf(rs, `pol-${id('x', 'own')}-ingress`)).not.toBe(peersOf(rs, `pol-${id('z', 'own')}-ingress`));
    expect(elementsOf(rs, `${peersOf(rs, `pol-${id('x', 'own')}-ingress`)}-v4`)).toEqual(['10.0.1.1']);
    expect(elementsOf(rs, `${peersOf(rs, `pol-${id('z', 'own')}-ingress`)}-v4`)).toEqual(['10.0.3.1']);
    expect(rs.sets.filter((set) => set.name.startsWith('peers-')).map((set) => set.name)).toHaveLength(6); // 3 distinct × 2 families
  });

  it('named ports: ingress resolves on the target pod, egress on the destination, protocol included', () => {
    const rs = rulesetOf(['x/a', 'y/a'], [
      policy('x', 'in', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-tcp' }, { port: 'serve-80-udp', protocol: 'UDP' }] }] }),
      policy('x', 'out', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'serve-80-tcp' }] }] }),
    ]);
    const i = id('x', 'in');
    const o = id('x', 'out');
    expect(chainText(rs, `pol-${i}-ingress`)).toEqual([
      'comment "x/in";',
      'ip daddr . meta l4proto . th dport @np-tcp-serve-81-tcp-v4 accept',
      'ip6 daddr . meta l4proto . th dport @np-tcp-serve-81-tcp-v6 accept',
      'ip daddr . meta l4proto . th dport @np-udp-serve-80-udp-v4 accept',
      'ip6 daddr . meta l4proto . th dport @np-udp-serve-80-udp-v6 accept',
    ]);
    expect(chainText(rs, `pol-${o}-egress`)).toEqual([
      'comment "x/out";',
      `ip daddr @${peersOf(rs, `pol-${o}-egress`)}-v4 ip daddr . meta l4proto . th dport @np-tcp-serve-80-tcp-v4 accept`,
      `ip6 daddr @${peersOf(rs, `pol-${o}-egress`)}-v6 ip6 daddr . meta l4proto . th dport @np-tcp-serve-80-tcp-v6 accept`,
    ]);
    expect(elementsOf(rs, 'np-tcp-serve-81-tcp-v4')).toEqual(['10.0.1.1 . tcp . 81', '10.0.2.1 . tcp . 81']);
    expect(elementsOf(rs, 'np-udp-serve-80-udp-v4')).toEqual(['10.0.1.1 . udp . 80', '10.0.2.1 . udp . 80']);
    expect(elementsOf(rs, 'np-tcp-serve-80-tcp-v4')).toEqual(['10.0.1.1 . tcp . 80', '10.0.2.1 . tcp . 80']);
    expect(rs.sets.find((s) => s.name === 'np-tcp-serve-80-tcp-v6')).toMatchObject({ type: 'ipv6_addr . inet_proto . inet_service', elements: [] });
  });

  it('a named port with another protocol than the container port resolves to nothing', () => {
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-tcp', protocol: 'UDP' }] }] })]);
    expect(elementsOf(rs, 'np-udp-serve-80-tcp-v4')).toEqual([]);
  });

  it('endPort: a range; overlapping entries merged (nft refuses overlapping intervals)', () => {
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 90 }, { port: 85 }, { port: 91, endPort: 95 }, { port: 100, protocol: 'UDP' }, { port: 443 }] }] })]);
    expect(chainText(rs, `pol-${id('x', 'p')}-ingress`)).toEqual(['comment "x/p";', 'meta l4proto . th dport { tcp . 80-95, tcp . 443, udp . 100 } accept']);
  });

  it('ipBlock with except, IPv4 and IPv6, beside a pod peer', () => {
    const rs = rulesetOf(['x/a'], [
      policy('x', 'p', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            to: [
              { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24', '192.168.1.128/25', '192.168.2.0/24'] } },
              { ipBlock: { cidr: 'fd00:1::/48', except: ['fd00:1:0:1::/64'] } },
              { ipBlock: { cidr: '0.0.0.0/0' } },
              { podSelector: {} },
            ],
            ports: [{ port: 53, protocol: 'UDP' }],
          },
        ],
      }),
    ]);
    const p = id('x', 'p');
    expect(chainText(rs, `pol-${p}-egress`)).toEqual([
      'comment "x/p";',
      `ip daddr @${peersOf(rs, `pol-${p}-egress`)}-v4 meta l4proto . th dport { udp . 53 } accept`,
      `ip6 daddr @${peersOf(rs, `pol-${p}-egress`)}-v6 meta l4proto . th dport { udp . 53 } accept`,
      'ip daddr 192.168.0.0/16 ip daddr != { 192.168.1.0/24, 192.168.2.0/24 } meta l4proto . th dport { udp . 53 } accept',
      'ip6 daddr fd00:1::/48 ip6 daddr != { fd00:1:0:1::/64 } meta l4proto . th dport { udp . 53 } accept',
      'ip daddr 0.0.0.0/0 meta l4proto . th dport { udp . 53 } accept',
    ]);
  });

  it('a port entry with only a protocol: every port of it', () => {
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: 'SCTP' }, { protocol: 'TCP' }, { port: 80, protocol: 'UDP' }] }] })]);
    const p = id('x', 'p');
    expect(chainText(rs, `pol-${p}-ingress`)).toEqual([
      'comment "x/p";',
      `ip saddr @${peersOf(rs, `pol-${p}-ingress`)}-v4 meta l4proto . th dport { udp . 80 } accept`,
      `ip saddr @${peersOf(rs, `pol-${p}-ingress`)}-v4 meta l4proto { sctp, tcp } accept`,
      `ip6 saddr @${peersOf(rs, `pol-${p}-ingress`)}-v6 meta l4proto . th dport { udp . 80 } accept`,
      `ip6 saddr @${peersOf(rs, `pol-${p}-ingress`)}-v6 meta l4proto { sctp, tcp } accept`,
    ]);
  });

  it('an unknown protocol: the entry allows nothing, the pod stays isolated', () => {
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: 'ICMP' }] }, { ports: [{ port: 80, protocol: 'ICMP' }, { port: 81 }] }] })]);
    expect(chainText(rs, `pol-${id('x', 'p')}-ingress`)).toEqual(['comment "x/p";', 'meta l4proto . th dport { tcp . 81 } accept']);
    expect(elementsOf(rs, 'ingress-ns-v4')).toEqual(['10.0.1.1 : jump ns-x-ingress']);
  });

  it('a hostNetwork pod is never in a set, even when selectors match it', () => {
    const host = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'x', name: 'h', labels: { pod: 'a' } }, spec: { nodeName: 'n1', hostNetwork: true, containers: [{ ports: [{ name: 'serve-80-tcp', containerPort: 80 }] }] }, status: { podIPs: [{ ip: '192.0.2.1' }] } };
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: sel({ pod: 'a' }), policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 'serve-80-tcp' }] }] })], { extra: [host] });
    expect(renderRuleset(rs)).not.toContain('192.0.2.1');
    expect(elementsOf(rs, `pol-${id('x', 'p')}-targets-v4`)).toEqual(['10.0.1.1']);
  });

  it('a dual-stack pod: its addresses in the sets and maps of both families', () => {
    const rs = rulesetOf(['x/a', 'y/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: sel({ [NS]: 'y' }) }] }] })], { stack: 'dual' });
    const p = id('x', 'p');
    expect(elementsOf(rs, 'ingress-ns-v4')).toEqual(['10.0.1.1 : jump ns-x-ingress']);
    expect(elementsOf(rs, 'ingress-ns-v6')).toEqual(['fd00::1:1 : jump ns-x-ingress']);
    expect(elementsOf(rs, `pol-${p}-targets-v6`)).toEqual(['fd00::1:1']);
    expect(elementsOf(rs, `${peersOf(rs, `pol-${p}-ingress`)}-v4`)).toEqual(['10.0.2.1']);
    expect(elementsOf(rs, `${peersOf(rs, `pol-${p}-ingress`)}-v6`)).toEqual(['fd00::2:1']);
  });

  it('only pods of this node are isolated and targets; peers come from every node', () => {
    const rs = rulesetOf(['x/a', 'x/b', 'y/a'], [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], { nodeOf: (ns, pod) => (pod === 'a' ? 'n1' : 'n2') });
    const p = id('x', 'p');
    expect(elementsOf(rs, 'ingress-ns-v4')).toEqual(['10.0.1.1 : jump ns-x-ingress']);
    expect(elementsOf(rs, `pol-${p}-targets-v4`)).toEqual(['10.0.1.1']);
    expect(elementsOf(rs, `${peersOf(rs, `pol-${p}-ingress`)}-v4`)).toEqual(['10.0.1.1', '10.0.1.2', '10.0.2.1']);
  });

  it('two pods claiming one address: its isolation verdict is drop, and the table still renders', () => {
    const stale = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'y', name: 'stale', labels: { pod: 'a' } }, spec: { nodeName: 'n1' }, status: { podIPs: [{ ip: '10.0.1.1' }] } };
    const rs = rulesetOf(['x/a'], [policy('x', 'p', { podSelector: {}, policyTypes: ['Ingress'] }), policy('y', 'q', { podSelector: {}, policyTypes: ['Ingress'] })], { extra: [stale] });
    expect(elementsOf(rs, 'ingress-ns-v4')).toEqual(['10.0.1.1 : drop']);
    expect(renderRuleset(rs)).toContain('elements = { 10.0.1.1 : drop }');
  });
});
