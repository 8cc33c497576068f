import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../lib/net/ip.ts';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import { attachmentMasqChain, planIptablesMasq, planIptablesUnmasq, planIptablesUnmasqKnown, planNftMasq, planNftUnmasq } from '../../lib/netfilter/masquerade.ts';
import { resolveBridge, type BridgeConf } from '../../plugins/bridge/conf.ts';
import { planAddressing, planContainer, planHost, planVlans } from '../../plugins/bridge/plan.ts';

const conf = (extra: Partial<BridgeConf> = {}): BridgeConf => ({ name: 'net', bridge: 'br0', ipam: { type: 'host-local' }, ...extra }) as BridgeConf;
const ipam = { ips: [{ address: '10.1.2.5/24' }, { address: 'fd00::5/64' }], routes: [{ dst: '0.0.0.0/0' }] };

describe('bridge conf', () => {
  it('defaults as the reference: cni0, preserveDefaultVlan, iptables; isDefaultGateway implies isGateway', () => {
    const br = resolveBridge({ name: 'n', isDefaultGateway: true } as BridgeConf, undefined);
    expect(br).toMatchObject({ bridge: 'cni0', isGateway: true, preserveDefaultVlan: true, ipMasqBackend: 'iptables', mtu: undefined, vlanTrunk: [] });
  });
  it('MAC precedence: CNI_ARGS < args.cni < runtimeConfig', () => {
    expect(resolveBridge(conf(), '02:00:00:00:00:01').mac).toBe('02:00:00:00:00:01');
    expect(resolveBridge(conf({ args: { cni: { mac: '02:00:00:00:00:02' } } }), '02:00:00:00:00:01').mac).toBe('02:00:00:00:00:02');
    expect(resolveBridge(conf({ args: { cni: { mac: '02:00:00:00:00:02' } }, runtimeConfig: { mac: '02:00:00:00:00:03' } }), undefined).mac).toBe('02:00:00:00:00:03');
  });
  it('refuses what the reference refuses, with its messages', () => {
    expect(() => resolveBridge(conf({ vlan: 4095 }), undefined)).toThrow('invalid VLAN ID 4095 (must be between 0 and 4094)');
    expect(() => resolveBridge(conf({ vlan: 2, vlanTrunk: [{ id: 3 }] }), undefined)).toThrow('cannot set vlan and vlanTrunk at the same time');
    expect(() => resolveBridge(conf({ vlanTrunk: [{ minID: 9, maxID: 3 }] }), undefined)).toThrow('minID is greater than maxID in trunk parameter');
    expect(() => resolveBridge(conf({ hairpinMode: true, promiscMode: true }), undefined)).toThrow('cannot set hairpin mode and promiscuous mode at the same time');
    expect(resolveBridge(conf({ vlanTrunk: [{ minID: 3, maxID: 5 }, { id: 10 }, { id: 4 }] }), undefined).vlanTrunk).toEqual([3, 4, 5, 10]);
  });
});

describe('bridge plans (golden text)', () => {
  it('addressing: gateway = first address, default route per family with isDefaultGateway', () => {
    const a = planAddressing(resolveBridge(conf({ isDefaultGateway: true }), undefined), ipam);
    expect(a.ips).toEqual([
      { address: '10.1.2.5/24', gateway: '10.1.2.1', interface: 2 },
      { address: 'fd00::5/64', gateway: 'fd00::1', interface: 2 },
    ]);
    expect(a.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '0.0.0.0/0', gw: '10.1.2.1' }, { dst: '::/0', gw: 'fd00::1' }]);
  });

  it('host batch for a new bridge: create, veth with its peer in the netns, port, gateways, read back', () => {
    const br = resolveBridge(conf({ isGateway: true, mtu: 1400, hairpinMode: true }), '02:00:00:00:00:09');
    const { gateways } = planAddressing(br, ipam);
    const lines = planHost(br, { observed: undefined, hostVeth: 'veth01020304', ifname: 'eth0', netns: '/run/netns/x', bridgeMac: '02:aa:aa:aa:aa:aa', gateways });
    expect(lines).toEqual([
      'link add br0 address 02:aa:aa:aa:aa:aa mtu 1400 type bridge',
      'link set br0 up',
      'link add veth01020304 mtu 1400 txqueuelen 0 type veth peer name eth0 mtu 1400 txqueuelen 0 address 02:00:00:00:00:09 netns /run/netns/x',
      'link set veth01020304 master br0 up',
      'link set dev veth01020304 type bridge_slave hairpin on',
      'addr replace 10.1.2.1/24 brd + dev br0',
      'addr replace fd00::1/64 dev br0',
      'link show dev veth01020304',
      'link show dev br0',
    ]);
  });

  it('existing bridge: a different IPv4 address is an error, or replaced with forceAddress (MAC pinned)', () => {
    const observed = { ifindex: 3, ifname: 'br0', flags: [], mtu: 1500, address: '02:bb:bb:bb:bb:bb', linkinfo: { info_kind: 'bridge' }, addr_info: [{ family: 'inet' as const, local: '10.1.2.254', prefixlen: 24 }] };
    const inp = () => ({ observed, hostVeth: 'vethx', ifname: 'eth0', netns: '/n', bridgeMac: '02:aa:aa:aa:aa:aa', gateways: [parseCidr('10.1.2.1/24')!] });
    const br = resolveBridge(conf({ isGateway: true }), undefined);
    expect(() => planHost(br, inp())).toThrow('"br0" already has an IP address different from 10.1.2.1/24');
    const forced = resolveBridge(conf({ isGateway: true, forceAddress: true }), undefined);
    expect(planHost(forced, inp()).filter((l) => l.startsWith('addr') || l.includes('address 02:bb'))).toEqual([
      'addr del 10.1.2.254/24 dev br0',
      'addr replace 10.1.2.1/24 brd + dev br0',
      'link set br0 address 02:bb:bb:bb:bb:bb',
    ]);
  });

  it('container batch: DAD off and arp_notify first, addresses, up, routes via the family gateway', () => {
    const br = resolveBridge(conf({ isGateway: true }), undefined);
    const { lines, sysctls } = planContainer(br, 'eth0', planAddressing(br, ipam));
    expect(sysctls).toEqual([
      { path: 'net/ipv6/conf/eth0/accept_dad', value: '0' },
      { path: 'net/ipv4/conf/eth0/arp_notify', value: '1' },
    ]);
    expect(lines).toEqual(['addr add 10.1.2.5/24 brd + dev eth0', 'addr add fd00::5/64 dev eth0', 'link set eth0 up', 'route add 0.0.0.0/0 via 10.1.2.1 dev eth0', 'link show dev eth0']);
  });

  it('vlan lines for access and trunk ports', () => {
    expect(planVlans(resolveBridge(conf({ vlan: 7, preserveDefaultVlan: false }), undefined), 'v')).toEqual(['vlan del dev v vid 1', 'vlan add dev v vid 7 pvid untagged']);
    expect(planVlans(resolveBridge(conf({ vlanTrunk: [{ minID: 3, maxID: 5 }, { id: 9 }] }), undefined), 'v')).toEqual(['vlan add dev v vid 3-5', 'vlan add dev v vid 9']);
  });

  it('no input reaches a batch line unchecked', () => {
    const br = resolveBridge(conf(), undefined);
    expect(() => planHost(br, { observed: undefined, hostVeth: 'v', ifname: 'eth0', netns: '/run/netns/a b', bridgeMac: '02:aa:aa:aa:aa:aa', gateways: [] })).toThrow(/unsafe token/);
  });
});

describe('masquerade plans', () => {
  const ips = [parseCidr('10.1.2.5/24')!];
  it('iptables: the reference chain, comment and rules', () => {
    const chain = attachmentMasqChain('h3net', 'abc123');
    expect(chain).toBe('CNI-2e479b33e90dceb1c6f67ab4'); // what /usr/lib/cni/bridge names it
    expect(planIptablesMasq('h3net', 'abc123', ips)).toEqual([
      `:${chain} - [0:0]`,
      `-A ${chain} -d 10.1.2.0/24 -m comment --comment "name: \\"h3net\\" id: \\"abc123\\"" -j ACCEPT`,
      `-A ${chain} ! -d 224.0.0.0/4 -m comment --comment "name: \\"h3net\\" id: \\"abc123\\"" -j MASQUERADE`,
      `-A POSTROUTING -s 10.1.2.5/32 -m comment --comment "name: \\"h3net\\" id: \\"abc123\\"" -j ${chain}`,
    ]);
  });
  it('iptables teardown finds rules by tag: only the selected attachment, of this network', () => {
    const saved = ['*nat', ':POSTROUTING ACCEPT [0:0]', ...planIptablesMasq('h3net', 'abc123', ips), ...planIptablesMasq('h3net', 'other', ips), ...planIptablesMasq('elsewhere', 'abc123', ips), 'COMMIT'].join('\n');
    const table = parseIptablesSave(saved);
    const chain = attachmentMasqChain('h3net', 'abc123');
    expect(planIptablesUnmasq(table, 'h3net', { only: ['abc123'] })).toEqual([
      `-D POSTROUTING -s 10.1.2.5/32 -m comment --comment "name: \\"h3net\\" id: \\"abc123\\"" -j ${chain}`,
      `-F ${chain}`,
      `-X ${chain}`,
    ]);
    expect(planIptablesUnmasq(table, 'h3net', { allBut: ['abc123'] }).filter((l) => l.startsWith('-X'))).toEqual([`-X ${attachmentMasqChain('h3net', 'other')}`]);
  });
  it('iptables teardown from known addresses (DEL with prevResult) deletes what the read would find', () => {
    const table = parseIptablesSave(['*nat', ':POSTROUTING ACCEPT [0:0]', ...planIptablesMasq('h3net', 'abc123', ips), 'COMMIT'].join('\n'));
    expect(planIptablesUnmasqKnown('h3net', 'abc123', ips)).toEqual(planIptablesUnmasq(table, 'h3net', { only: ['abc123'] }));
    expect(planIptablesUnmasqKnown('h3net', 'abc123', [])).toEqual([]);
  });
  it('nft: one transaction; teardown by handle of tagged rules', () => {
    expect(planNftMasq('n', 'c', ips)).toContain('ip saddr 10.1.2.5 ip daddr != 10.1.2.0/24 ip daddr != 224.0.0.0/4 masquerade comment "tscni ');
    const comment = /comment "([^"]+)"/.exec(planNftMasq('n', 'c', ips))![1]!;
    const rules = [
      { family: 'inet', table: 'tscni_masquerade', chain: 'postrouting', handle: 7, comment },
      { family: 'inet', table: 'tscni_masquerade', chain: 'postrouting', handle: 8, comment: 'something else' },
    ];
    expect(planNftUnmasq({ tables: [], chains: [], rules, sets: [] }, 'n', { only: ['c'] })).toBe('delete rule inet tscni_masquerade postrouting handle 7\n');
    expect(planNftUnmasq({ tables: [], chains: [], rules, sets: [] }, 'n', { allBut: ['c'] })).toBe('');
  });
});
