import { describe, expect, it } from 'vitest';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import { parsePortmap, resolvePortmap } from '../../plugins/portmap/conf.ts';
import { dnChain, dnChainRules, planIptablesAdd, planIptablesDel } from '../../plugins/portmap/iptables.ts';
import { planNftAdd } from '../../plugins/portmap/nftables.ts';

const prev = { ips: [{ address: '10.88.0.5/16' }, { address: 'fd00::5/64' }] };
function portmap(extra: object, mappings: object[] = [{ HostPort: 8080, ContainerPort: 80, Protocol: 'TCP' }]) {
  const { conf, mappings: parsed } = parsePortmap({ name: 'podman', runtimeConfig: { portMappings: mappings }, ...extra });
  return resolvePortmap(conf, prev, parsed);
}
const empty = parseIptablesSave('*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n');

describe('portmap plans', () => {
  it('names the chain as the reference plugin does', () => {
    expect(dnChain('pmnet', 'abc')).toBe('CNI-DN-0726f1684a40233c08ebd'); // measured with /usr/lib/cni/portmap
  });

  it('plans the reference rules in one nat transaction, shared chains only when missing', () => {
    const p = portmap({});
    const chain = dnChain('podman', 'c1');
    expect(planIptablesAdd(empty, 'podman', 'c1', p, p.families[0]!)).toEqual([
      '-N CNI-HOSTPORT-DNAT',
      '-I PREROUTING 1 -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-I OUTPUT 1 -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-N CNI-HOSTPORT-SETMARK',
      '-N CNI-HOSTPORT-MASQ',
      '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
      '-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE',
      '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
      `-N ${chain}`,
      `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"podman\\" id: \\"c1\\"" -m multiport --dports 8080 -j ${chain}`,
      `-A ${chain} -s 10.88.0.0/16 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK`,
      `-A ${chain} -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK`,
      `-A ${chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.5:80`,
    ]);
    expect(dnChainRules(p, p.families[1]!)).toEqual(['-s fd00::/64 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK', '-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::5]:80']);
  });

  it('honours masqAll, markMasqBit, externalSetMarkChain, snat:false, hostIP and conditions', () => {
    const f = (extra: object, mappings?: object[]) => {
      const p = portmap(extra, mappings);
      return dnChainRules(p, p.families[0]!);
    };
    expect(f({ masqAll: true })).toEqual(['-p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK', '-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.5:80']);
    expect(f({ snat: false })).toEqual(['-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.5:80']);
    expect(f({ externalSetMarkChain: 'KUBE-MARK-MASQ' })[0]).toBe('-s 10.88.0.0/16 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ');
    expect(f({}, [{ hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.168.1.1' }]).at(-1)).toBe('-d 192.168.1.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.88.0.5:53');
    const bit = portmap({ markMasqBit: 5 });
    expect(planIptablesAdd(empty, 'podman', 'c1', bit, bit.families[0]!)).toContain('-A CNI-HOSTPORT-MASQ -m mark --mark 0x20/0x20 -j MASQUERADE');
    const cond = portmap({ conditionsV4: ['!', '-d', '192.168.0.0/16'] });
    expect(planIptablesAdd(empty, 'podman', 'c1', cond, cond.families[0]!).find((l) => l.includes('multiport'))).toMatch(/^-A CNI-HOSTPORT-DNAT ! -d 192.168.0.0\/16 -p tcp /);
    // A hostIP of one family maps only in that family.
    expect(portmap({}, [{ hostPort: 1, containerPort: 1, hostIP: '::1' }]).families.map((x) => x.family)).toEqual([6]);
  });

  it('refuses bad options and mappings before anything runs', () => {
    expect(() => portmap({ markMasqBit: 3, externalSetMarkChain: 'X' })).toThrow('cannot specify externalSetMarkChain and markMasqBit');
    expect(() => portmap({ markMasqBit: 32 })).toThrow(/markMasqBit/);
    expect(() => portmap({ conditionsV4: ['-m comment --comment "x"'] })).toThrow(/invalid conditionsV4/);
    expect(() => portmap({ conditionsV4: ['a\nCOMMIT'] })).toThrow(/invalid conditionsV4/);
    expect(() => portmap({}, [{ hostPort: 1, containerPort: 1, protocol: 'icmp' }])).toThrow(/invalid protocol/);
    expect(() => portmap({}, [{ hostPort: 70000, containerPort: 1 }])).toThrow(/hostPort/);
    expect(() => portmap({}, [{ hostPort: 1, containerPort: 1, hostIP: 'nope' }])).toThrow(/invalid hostIP/);
    expect(() => portmap({}, [{ hostPort: 1, containerPort: 1 }, { hostPort: 1, containerPort: 2 }])).toThrow(/duplicate host port/);
  });

  it('deletes a chain and every jump to it', () => {
    const chain = dnChain('podman', 'c1');
    const t = parseIptablesSave([`:${chain} - [0:0]`, `-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 8080 -j ${chain}`, `-A ${chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.5:80`].join('\n'));
    expect(planIptablesDel(t, [chain])).toEqual([`-D CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 8080 -j ${chain}`, `-F ${chain}`, `-X ${chain}`]);
    expect(planIptablesDel(t, [dnChain('podman', 'other')])).toEqual([]);
  });

  it('removes the shared chains with the last container, deleting their rules rather than flushing', () => {
    const p = portmap({});
    const [c1, c2] = [dnChain('podman', 'c1'), dnChain('podman', 'c2')];
    const one = planIptablesAdd(empty, 'podman', 'c1', p, p.families[0]!);
    const two = planIptablesAdd(empty, 'podman', 'c2', p, p.families[0]!).filter((l) => l.includes(c2));
    const save = (lines: string[]) => parseIptablesSave(lines.map((l) => l.replace(/^-N (\S+)$/, ':$1 - [0:0]').replace(/^-I (\S+) 1 /, '-A $1 ')).join('\n'));
    expect(planIptablesDel(save([...one, ...two]), [c1]).filter((l) => l.startsWith('-X'))).toEqual([`-X ${c1}`]);
    const last = planIptablesDel(save(one), [c1]);
    expect(last.filter((l) => !l.startsWith('-D'))).toEqual([`-F ${c1}`, `-X ${c1}`, '-X CNI-HOSTPORT-DNAT', '-X CNI-HOSTPORT-SETMARK', '-X CNI-HOSTPORT-MASQ']);
    expect(last.filter((l) => l.startsWith('-D'))).toHaveLength(6);
  });

  it('plans one nft transaction with tagged DNAT and hairpin/localhost masquerade', () => {
    const script = planNftAdd({ tables: [], chains: [], rules: [], sets: [] }, 'podman', 'c1', portmap({}));
    expect(script).toContain('add rule inet tscni_portmap hostports meta l4proto tcp th dport 8080 dnat ip to 10.88.0.5:80 comment "tscni-portmap ');
    expect(script).toContain('add rule inet tscni_portmap postrouting ip saddr { 10.88.0.0/16, 127.0.0.1 } ip daddr 10.88.0.5 meta l4proto tcp th dport 80 ct status dnat masquerade');
    expect(script).toContain('dnat ip6 to [fd00::5]:80');
    expect(script.match(/jump hostports/g)).toHaveLength(2);
  });
});
