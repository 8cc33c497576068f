import { describe, expect, it } from 'vitest';
import { parseVxlanConf } from '../../plugins/vxlan/conf.ts';
import { bridgeConf } from '../../plugins/vxlan/index.ts';
import { etcdPeerInputs, leaseValue } from '../../plugins/vxlan/etcd-registry.ts';
import { validatePeers, vtepMac, type PeerInput } from '../../plugins/vxlan/peers.ts';
import { prefixEnd } from '../../lib/etcd/client.ts';
import { canonicalIp, formatCidr, parseSubnet } from '../../lib/net/ip.ts';

const network = parseSubnet('10.244.0.0/16')!;
const self = { subnet: parseSubnet('10.244.1.0/24')!, ip: '192.168.100.1' };
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
    const cluster = parseSubnet('10.0.0.0/8')!;
    const wide = { subnet: parseSubnet('10.200.0.0/24')!, ip: '192.168.100.1' };
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
      expect(peers.map((p) => p.ip), ip).toEqual(canonicalIp(ip) === ip ? [ip] : []);
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
    expect(bridgeConf(c, '1.0.0', parseSubnet('10.244.1.0/24')!, undefined)).toMatchObject({ type: 'bridge', policy });
  });
  it('leases from etcd when no subnet is given', () => {
    expect(parseVxlanConf({ ...base, etcd: { endpoints: ['http://10.0.0.1:2379'] } }).source).toMatchObject({ kind: 'etcd', etcd: { prefix: '/coreos.com/network', leaseTTL: 86400 } });
  });
});
