import { describe, expect, it } from 'vitest';
import { parseVxlanConf } from '../../plugins/vxlan/conf.ts';
import { bridgeConf } from '../../plugins/vxlan/index.ts';
import { etcdPeerInputs, leaseValue, subnetKey, subnetsOfKey } from '../../plugins/vxlan/etcd-registry.ts';
import { unusableVtep, validatePeers, vtepMac, type PeerInput } from '../../plugins/vxlan/peers.ts';
import { prefixEnd } from '../../lib/etcd/client.ts';
import { canonicalIp, formatCidr, parseIp, parseSubnet } from '../../lib/net/ip.ts';

const network = { network: parseSubnet('10.244.0.0/16')!, network6: undefined };
const self = { subnet: parseSubnet('10.244.1.0/24')!, subnet6: undefined, ip: '192.168.100.1' };
const inputs = (...entries: unknown[]): PeerInput[] => entries.map((entry, i) => ({ origin: `peers[${i}]`, entry }));

describe('validatePeers', () => {
  it('accepts good peers, derives MACs, skips ourselves', () => {
    const { peers, rejected } = validatePeers(inputs({ subnet: '10.244.1.0/24', ip: '192.168.100.1' }, { subnet: '10.244.2.0/24', ip: '192.168.100.2' }), self, network, 1);
    expect(rejected).toEqual([]);
    expect(peers).toEqual([{ subnet: '10.244.2.0/24', ip: '192.168.100.2', mac: vtepMac(1, '192.168.100.2'), vtep: '10.244.2.0' }]);
  });

  it('rejects bad entries one by one with a reason, keeping the good ones', () => {
    const { peers, rejected } = validatePeers(
      inputs(
        { subnet: '10.244.2.0/24', ip: '192.168.100.2' },
        'garbage',
        { subnet: '10.244.3.1/24', ip: '192.168.100.3' },
        { subnet: '10.244.4.0/24', ip: 'not-an-ip' },
        { subnet: '10.244.1.0/24', ip: '192.168.100.9' },
        { subnet: '10.244.2.0/25', ip: '192.168.100.5' },
        { subnet: '10.245.0.0/24', ip: '192.168.100.6' },
        { subnet: '10.244.7.0/24', ip: '192.168.100.1' },
        { subnet: '10.244.8.0/24', ip: '192.168.100.2' },
        { subnet: '10.244.9.0/24', ip: '192.168.100.9', mac: '01:00:5e:00:00:01' },
        { subnet: '10.244.10.0/24', ip: 'fd00::1' },
      ),
      self,
      network,
      1,
    );
    expect(peers.map((p) => p.subnet)).toEqual(['10.244.2.0/24']);
    expect(rejected.map((r) => `${r.origin}: ${r.reason}`)).toEqual([
      'peers[1]: not an object with subnet and ip',
      'peers[2]: subnet "10.244.3.1/24" is not an IPv4 CIDR without host bits',
      'peers[3]: ip "not-an-ip" is not an IP address',
      'peers[4]: subnet 10.244.1.0/24 claims our subnet 10.244.1.0/24',
      'peers[5]: subnet 10.244.2.0/25 overlaps 10.244.2.0/24 of peers[0]',
      'peers[6]: subnet 10.245.0.0/24 is not a subnet of the cluster network 10.244.0.0/16',
      'peers[7]: claims our underlay address 192.168.100.1 with subnet 10.244.7.0/24, ours is 10.244.1.0/24',
      'peers[8]: ip 192.168.100.2 already belongs to peers[0]',
      'peers[9]: mac "01:00:5e:00:00:01" is not a unicast MAC address',
      'peers[10]: ip fd00::1 is not of our underlay\'s family (IPv4)',
    ]);
  });

  it('accepts exactly the subnet and address spellings lib/net accepts, in canonical form', () => {
    const cluster = { network: parseSubnet('10.0.0.0/8')!, network6: undefined };
    const wide = { subnet: parseSubnet('10.200.0.0/24')!, subnet6: undefined, ip: '192.168.100.1' };
    const subnets = ['10.1.0.0/16', '10.1.2.0/24', '10.255.255.252/30', '10.1.2.3/32', '010.1.2.0/24', '10.1.2.0/024', '10.1.2.0/33', '10.256.0.0/16', '10.1.2.0', '10.1.2.0/', ' 10.1.2.0/24', '10.1.2.0/24 ', '10.1.2.128/24', 'fd00::/64', '10.1.2.0/8'];
    for (const [i, subnet] of subnets.entries()) {
      const libnet = parseSubnet(subnet);
      const want = !!libnet && libnet.ip.family === 4 && formatCidr(libnet) === subnet && libnet.prefix > 8;
      const { peers } = validatePeers(inputs({ subnet, ip: `192.168.101.${i + 1}` }), wide, cluster, 1);
      expect(peers.length === 1, subnet).toBe(want);
    }
    const ips = ['192.168.101.7', '192.168.101.07', '192.168.101.256', '192.168.101', '192.168.101.7 ', '0.0.0.0', '255.255.255.255'];
    for (const [i, ip] of ips.entries()) {
      const { peers } = validatePeers(inputs({ subnet: `10.9.${i}.0/24`, ip }), wide, cluster, 1);
      // 0.0.0.0 and the broadcast address are no unicast underlay addresses
      expect(peers.map((p) => p.ip), ip).toEqual(canonicalIp(ip) === ip && !['0.0.0.0', '255.255.255.255'].includes(ip) ? [ip] : []);
    }
  });

  it('refuses IPv4 underlay addresses at the edges of the unusable ranges, and only those', () => {
    const cases: [string, string | undefined][] = [
      ['0.0.0.0', 'not a unicast address'],
      ['0.0.0.1', undefined],
      ['255.255.255.255', 'not a unicast address'],
      ['255.255.255.254', undefined],
      ['126.255.255.255', undefined],
      ['127.0.0.0', 'not a unicast address'],
      ['127.255.255.255', 'not a unicast address'],
      ['128.0.0.0', undefined],
      ['169.253.255.255', undefined],
      ['169.254.0.0', 'link-local'],
      ['169.254.255.255', 'link-local'],
      ['169.255.0.0', undefined],
      ['223.255.255.255', undefined],
      ['224.0.0.0', 'multicast'],
      ['239.255.255.255', 'multicast'],
      ['240.0.0.0', undefined],
    ];
    for (const [ip, reason] of cases) {
      expect(unusableVtep(parseIp(ip)!), ip).toBe(reason);
      // the peer list takes the regex path (a number from the match): the same verdict
      const { peers, rejected } = validatePeers(inputs({ subnet: '10.244.2.0/24', ip }), self, network, 1);
      expect(rejected.map((r) => r.reason), ip).toEqual(reason ? [`ip ${ip} is ${reason}: not an underlay address`] : []);
      expect(peers.length, ip).toBe(reason ? 0 : 1);
    }
  });

  it('derives a stable, locally administered unicast MAC per VNI and IP', () => {
    const mac = vtepMac(1, '192.168.100.2');
    expect(mac).toBe(vtepMac(1, '192.168.100.2'));
    expect(mac).not.toBe(vtepMac(2, '192.168.100.2'));
    expect(parseInt(mac.slice(0, 2), 16) & 3).toBe(2);
  });
});

describe('etcd registry entries (flannel layout)', () => {
  const etcd = { endpoints: ['http://127.0.0.1:2379'], prefix: '/coreos.com/network', leaseTTL: 60 };
  it('reads leases oldest first, rejecting other backends and VNIs', () => {
    const kv = (key: string, value: string, createRevision: number) => ({ key: `/coreos.com/network/subnets/${key}`, value, createRevision, modRevision: createRevision, lease: '0' });
    const got = etcdPeerInputs(etcd, [kv('10.244.3.0-24', leaseValue('192.168.100.3', 1, '02:00:00:00:00:03'), 9), kv('10.244.2.0-24', leaseValue('192.168.100.2', 1, '02:00:00:00:00:02'), 5), kv('10.244.4.0-24', leaseValue('192.168.100.4', 7, '02:00:00:00:00:04'), 6)], 1);
    expect(got.map((g) => g.entry)).toEqual([{ subnet: '10.244.2.0/24', ip: '192.168.100.2', mac: '02:00:00:00:00:02' }, 'not a vxlan lease for VNI 1', { subnet: '10.244.3.0/24', ip: '192.168.100.3', mac: '02:00:00:00:00:03' }]);
  });
  it('computes the range end of a prefix', () => {
    expect(prefixEnd('/a/subnets/')).toBe('/a/subnets0');
  });
});

describe('parseVxlanConf', () => {
  const base = { cniVersion: '1.0.0', name: 'overlay', type: 'vxlan', network: '10.244.0.0/16' };
  it('fills defaults: VNI 1, port 4789, device tscni.1, the peers file', () => {
    const c = parseVxlanConf({ ...base, subnet: '10.244.1.0/24' });
    expect(c).toMatchObject({ vni: 1, port: 4789, device: 'tscni.1', bridge: 'cni0', subnetLen: 24, source: { kind: 'file', path: '/etc/tscni/vxlan-peers.json' } });
  });
  it('refuses bad configs with code 7', () => {
    const bad = [
      { ...base, subnet: '10.245.1.0/24' },
      { ...base, network: '10.244.0.1/16', subnet: '10.244.1.0/24' },
      { ...base },
      { ...base, subnet: '10.244.1.0/24', peers: [], peersFile: '/tmp/x' },
      { ...base, subnet: '10.244.1.0/24', peersFile: '/tmp/../etc/x' },
      { ...base, subnet: '10.244.1.0/24', underlay: 'eth0\nlink del x' },
      { ...base, subnet: '10.244.1.0/24', vni: 1 << 24 },
      { ...base, etcd: { endpoints: ['http://h:1/;rm'] } },
      { ...base, subnet: '10.244.1.0/24', policy: { objects: 'relative' } },
      { ...base, subnet: '10.244.1.0/24', policy: ['/etc/tscni/objects'] },
    ];
    for (const c of bad) expect(() => parseVxlanConf(c), JSON.stringify(c)).toThrow(expect.objectContaining({ code: 7 }));
  });
  it('passes "policy" to its bridge as it is (NetworkPolicy in-process)', () => {
    const policy = { objects: '/etc/tscni/objects', nodeName: 'node-1' };
    const c = parseVxlanConf({ ...base, subnet: '10.244.1.0/24', policy });
    expect(bridgeConf(c, '1.0.0', { v4: parseSubnet('10.244.1.0/24')! }, undefined)).toMatchObject({ type: 'bridge', policy });
  });
  it('leases from etcd when no subnet is given', () => {
    expect(parseVxlanConf({ ...base, etcd: { endpoints: ['http://10.0.0.1:2379'] } }).source).toMatchObject({ kind: 'etcd', etcd: { prefix: '/coreos.com/network', leaseTTL: 86400 } });
  });
});

describe('validatePeers with IPv6 (dual-stack and IPv6-only clusters)', () => {
  const dual = { network: parseSubnet('10.244.0.0/16')!, network6: parseSubnet('fd00:10:244::/56')! };
  const me = { subnet: parseSubnet('10.244.1.0/24')!, subnet6: parseSubnet('fd00:10:244:1::/64')!, ip: '192.168.100.1' };

  it('accepts dual-stack and IPv4-only peers side by side (a mixed cluster), in canonical form', () => {
    const { peers, rejected } = validatePeers(inputs({ subnet: '10.244.2.0/24', subnet6: 'fd00:10:244:2:0::/64', ip: '192.168.100.2' }, { subnet: '10.244.3.0/24', ip: '192.168.100.3' }, { subnet: '10.244.1.0/24', subnet6: 'fd00:10:244:1::/64', ip: '192.168.100.1' }), me, dual, 1);
    expect(rejected).toEqual([]);
    expect(peers).toEqual([
      { subnet: '10.244.2.0/24', vtep: '10.244.2.0', subnet6: 'fd00:10:244:2::/64', vtep6: 'fd00:10:244:2::', ip: '192.168.100.2', mac: vtepMac(1, '192.168.100.2') },
      { subnet: '10.244.3.0/24', vtep: '10.244.3.0', ip: '192.168.100.3', mac: vtepMac(1, '192.168.100.3') },
    ]);
  });

  it('ignores a peer\'s IPv6 half on an IPv4-only node', () => {
    const { peers } = validatePeers(inputs({ subnet: '10.244.2.0/24', subnet6: 'fd00:10:244:2::/64', ip: '192.168.100.2' }), self, network, 1);
    expect(peers).toEqual([{ subnet: '10.244.2.0/24', vtep: '10.244.2.0', ip: '192.168.100.2', mac: vtepMac(1, '192.168.100.2') }]);
  });

  it('over an IPv6 underlay takes ip6 (with an etcd lease\'s BackendV6Data MAC)', () => {
    const me6 = { ...me, ip: 'fd00:100::1' };
    const { peers, rejected } = validatePeers(inputs({ subnet: '10.244.2.0/24', subnet6: 'fd00:10:244:2::/64', ip: '192.168.100.2', ip6: 'FD00:100::2', mac: '02:00:00:00:00:04', mac6: '02:00:00:00:00:06' }, { subnet: '10.244.3.0/24', ip: '192.168.100.3' }), me6, dual, 1);
    expect(peers).toEqual([{ subnet: '10.244.2.0/24', vtep: '10.244.2.0', subnet6: 'fd00:10:244:2::/64', vtep6: 'fd00:10:244:2::', ip: 'fd00:100::2', mac: '02:00:00:00:00:06' }]);
    expect(rejected).toEqual([{ origin: 'peers[1]', reason: "ip 192.168.100.3 is not of our underlay's family (IPv6)" }]);
  });

  it('rejects bad IPv6 peer data entry by entry with a reason', () => {
    const { peers, rejected } = validatePeers(
      inputs(
        { subnet: '10.244.2.0/24', subnet6: 'fd00:10:244:2::/64', ip: '192.168.100.2' },
        { subnet: '10.244.3.0/24', subnet6: 'fd00:10:244:2::/63', ip: '192.168.100.3' },
        { subnet: '10.244.4.0/24', subnet6: 'fd00:10:244:1::/64', ip: '192.168.100.4' },
        { subnet: '10.244.5.0/24', subnet6: 'fd00:10:245::/64', ip: '192.168.100.5' },
        { subnet: '10.244.6.0/24', subnet6: 'fd00:10:244:6::1/64', ip: '192.168.100.6' },
        { subnet: '10.244.7.0/24', subnet6: 'fd00:10:244:7::/64', ip: '192.168.100.7', ip6: 'fe80::7' },
        { subnet: '10.244.8.0/24', subnet6: 'fd00:10:244:8::/64', ip: '224.0.0.8' },
        { subnet: '10.244.9.0/24', subnet6: 'fd00:10:244:9::/64', ip: '192.168.100.9', ip6: 'ff02::9' },
        { subnet: '10.244.10.0/24', subnet6: 'fd00:10:244:a::/64', ip: '169.254.0.10' },
        { subnet: '10.244.11.0/24', subnet6: 'fd00:10:244:b::/64', ip: '192.168.100.1' },
        { subnet: '10.244.12.0/24', subnet6: 'fd00:10:244::/56', ip: '192.168.100.12' },
      ),
      me,
      dual,
      1,
    );
    expect(peers.map((p) => p.subnet6)).toEqual(['fd00:10:244:2::/64']);
    expect(rejected.map((r) => `${r.origin}: ${r.reason}`)).toEqual([
      'peers[1]: subnet6 fd00:10:244:2::/63 overlaps fd00:10:244:2::/64 of peers[0]',
      'peers[2]: subnet6 fd00:10:244:1::/64 claims our subnet6 fd00:10:244:1::/64',
      'peers[3]: subnet6 fd00:10:245::/64 is not a subnet of the cluster network fd00:10:244::/56',
      'peers[4]: subnet6 "fd00:10:244:6::1/64" is not an IPv6 CIDR without host bits',
      'peers[5]: ip6 fe80::7 is link-local: not an underlay address',
      'peers[6]: ip 224.0.0.8 is multicast: not an underlay address',
      'peers[7]: ip6 ff02::9 is multicast: not an underlay address',
      'peers[8]: ip 169.254.0.10 is link-local: not an underlay address',
      'peers[9]: claims our underlay address 192.168.100.1 with subnet 10.244.11.0/24 fd00:10:244:b::/64, ours is 10.244.1.0/24 fd00:10:244:1::/64',
      'peers[10]: subnet6 fd00:10:244::/56 is not a subnet of the cluster network fd00:10:244::/56',
    ]);
  });

  it('an IPv6-only cluster needs subnet6', () => {
    const v6 = { network: undefined, network6: dual.network6 };
    const { peers, rejected } = validatePeers(inputs({ subnet6: 'fd00:10:244:2::/64', ip: '192.168.100.2' }, { subnet: '10.244.3.0/24', ip: '192.168.100.3' }), { subnet: undefined, subnet6: me.subnet6, ip: me.ip }, v6, 1);
    expect(peers).toEqual([{ subnet6: 'fd00:10:244:2::/64', vtep6: 'fd00:10:244:2::', ip: '192.168.100.2', mac: vtepMac(1, '192.168.100.2') }]);
    expect(rejected).toEqual([{ origin: 'peers[1]', reason: 'needs a "subnet6" string' }]);
  });
});

describe('etcd leases in flannel\'s dual-stack layout', () => {
  const etcd = { endpoints: ['http://127.0.0.1:2379'], prefix: '/coreos.com/network', leaseTTL: 60 };
  const kv = (key: string, value: unknown, rev = 1) => ({ key: `/coreos.com/network/subnets/${key}`, value: JSON.stringify(value), createRevision: rev, modRevision: rev, lease: '0' });

  // flannel-io/flannel pkg/subnet/subnet.go: MakeSubnetKey joins `sn.StringSep(".", "-")` and
  // `sn6.StringSep(":", "-")` with "&"; ParseSubnetKey's subnetRegex reads
  // `(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$` (an IPv6-only lease: `0.0.0.0-0&…`).
  // Values are pkg/lease/lease.go's LeaseAttrs: PublicIP, PublicIPv6, BackendType, BackendData, BackendV6Data.
  it('reads a dual-stack lease exactly as flannel writes it, and an IPv6-only one', () => {
    const flannel = { PublicIP: '192.168.100.7', PublicIPv6: 'fd00:100::7', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:aa:00:00:00:07' }, BackendV6Data: { VNI: 1, VtepMAC: '02:bb:00:00:00:07' } };
    const v6only = { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:100::8', BackendType: 'vxlan', BackendV6Data: { VNI: 1, VtepMAC: '02:bb:00:00:00:08' } };
    const got = etcdPeerInputs(etcd, [kv('10.244.7.0-24&fd00:10:244:7::-64', flannel, 1), kv('0.0.0.0-0&fd00:10:244:8::-64', v6only, 2), kv('10.244.9.0-24&fd00:10:244:9::-64', { ...flannel, BackendV6Data: { VNI: 2, VtepMAC: 'x' } }, 3), kv('10.244.10.0-24&nonsense-64', flannel, 4)], 1);
    expect(got.map((g) => g.entry)).toEqual([
      { subnet: '10.244.7.0/24', subnet6: 'fd00:10:244:7::/64', ip: '192.168.100.7', ip6: 'fd00:100::7', mac: '02:aa:00:00:00:07', mac6: '02:bb:00:00:00:07' },
      { subnet6: 'fd00:10:244:8::/64', ip6: 'fd00:100::8', mac6: '02:bb:00:00:00:08' },
      'not a vxlan lease for VNI 1',
      'not a vxlan lease for VNI 1',
    ]);
  });

  it('writes keys and values in that layout', () => {
    const c = (t: string) => parseSubnet(t)!;
    expect(subnetKey(etcd, { v4: c('10.244.1.0/24'), v6: c('fd00:10:244:1::/64') })).toBe('/coreos.com/network/subnets/10.244.1.0-24&fd00:10:244:1::-64');
    expect(subnetKey(etcd, { v6: c('fd00:10:244:1::/64') })).toBe('/coreos.com/network/subnets/0.0.0.0-0&fd00:10:244:1::-64');
    expect(subnetKey(etcd, { v4: c('10.244.1.0/24') })).toBe('/coreos.com/network/subnets/10.244.1.0-24');
    expect(JSON.parse(leaseValue('fd00:100::1', 1, '02:00:00:00:00:01'))).toEqual({ PublicIP: '0.0.0.0', PublicIPv6: 'fd00:100::1', BackendType: 'vxlan', BackendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } });
    for (const key of ['10.244.1.0-24&fd00:10:244:1::-64', '0.0.0.0-0&fd00:10:244:1::-64', '10.244.1.0-24']) {
      const parsed = subnetsOfKey(etcd, `/coreos.com/network/subnets/${key}`);
      expect(subnetKey(etcd, parsed!)).toBe(`/coreos.com/network/subnets/${key}`);
    }
    expect(subnetsOfKey(etcd, '/coreos.com/network/subnets/0.0.0.0-0')).toBeUndefined();
  });
});

describe('parseVxlanConf with IPv6', () => {
  const base = { cniVersion: '1.0.0', name: 'overlay', type: 'vxlan' };
  it('takes network6 / subnet6 / subnetLen6 (default 64) beside or instead of network', () => {
    const dual = parseVxlanConf({ ...base, network: '10.244.0.0/16', subnet: '10.244.1.0/24', network6: 'fd00:10:244::/56', subnet6: 'fd00:10:244:1::/64' });
    expect([dual.network, dual.network6, dual.subnet6].map((c) => c && formatCidr(c))).toEqual(['10.244.0.0/16', 'fd00:10:244::/56', 'fd00:10:244:1::/64']);
    expect(dual.subnetLen6).toBe(64);
    const v6 = parseVxlanConf({ ...base, network6: 'fd00:10:244::/56', etcd: { endpoints: ['http://10.0.0.1:2379'] } });
    expect(v6.network).toBeUndefined();
  });
  it('refuses bad IPv6 configs with code 7', () => {
    const bad = [
      { ...base },
      { ...base, network6: '10.244.0.0/16', subnet6: '10.244.1.0/24' },
      { ...base, network6: 'fd00:10:244::/56' },
      { ...base, network6: 'fd00:10:244::/56', subnet6: 'fd00:10:245::/64' },
      { ...base, network6: 'fd00:10:244::/64', subnet6: 'fd00:10:244::/64' },
      { ...base, network: '10.244.0.0/16', subnet: '10.244.1.0/24', subnet6: 'fd00:10:244:1::/64' },
      { ...base, network: '10.244.0.0/16', subnet: '10.244.1.0/24', network6: 'fd00:10:244::/56' },
    ];
    for (const c of bad) expect(() => parseVxlanConf(c), JSON.stringify(c)).toThrow(expect.objectContaining({ code: 7 }));
  });
});
