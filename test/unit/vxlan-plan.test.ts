import { describe, expect, it } from 'vitest';
import type { IpLink } from '../../lib/ip/types.ts';
import { overhead, planDevice, resolveUnderlay, type DeviceSpec } from '../../plugins/vxlan/device.ts';
import { missingPeerEntries, planPeerChanges, planPeers, type PeerState } from '../../plugins/vxlan/reconcile.ts';
import type { Peer } from '../../plugins/vxlan/peers.ts';
import { planMasq } from '../../plugins/vxlan/masq.ts';

const D = 'tscni.1';
const peer = (n: number, ip = `192.168.100.${n}`, mac = `02:00:00:00:00:0${n}`): Peer => ({ subnet: `10.244.${n}.0/24`, ip, mac, vtep: `10.244.${n}.0` });
/** A dual-stack peer: its IPv6 subnet and VTEP beside the IPv4 ones, one MAC and underlay address for both. */
const peer46 = (n: number, ip = `192.168.100.${n}`, mac = `02:00:00:00:00:0${n}`): Peer => ({ ...peer(n, ip, mac), subnet6: `fd00:10:244:${n}::/64`, vtep6: `fd00:10:244:${n}::` });
const empty: PeerState = { routes: [], neighs: [], fdb: [] };
const pairs = (p: Peer) => [...(p.subnet ? [[p.subnet, p.vtep!]] : []), ...(p.subnet6 ? [[p.subnet6, p.vtep6!]] : [])];
/** The kernel state after `planPeers` applied `peers`, as `ip -json` / `bridge -json fdb` print it. */
const applied = (peers: readonly Peer[]): PeerState => ({
  routes: peers.flatMap((p) => pairs(p).map(([dst, gateway]) => ({ dst: dst!, gateway: gateway!, dev: D, flags: ['onlink'], protocol: 'boot' }))),
  neighs: peers.flatMap((p) => pairs(p).map(([, vtep]) => ({ dst: vtep!, dev: D, lladdr: p.mac, state: ['PERMANENT'] }))),
  fdb: peers.map((p) => ({ mac: p.mac, ifname: D, dst: p.ip, flags: ['self'], state: 'permanent' })),
});

describe('planPeers', () => {
  it('adds every entry of every peer from empty, with replace', () => {
    const plan = planPeers(D, [peer(2), peer(3)], empty);
    expect(plan.ip).toEqual([
      'neigh replace 10.244.2.0 lladdr 02:00:00:00:00:02 dev tscni.1 nud permanent',
      'route replace 10.244.2.0/24 via 10.244.2.0 dev tscni.1 onlink',
      'neigh replace 10.244.3.0 lladdr 02:00:00:00:00:03 dev tscni.1 nud permanent',
      'route replace 10.244.3.0/24 via 10.244.3.0 dev tscni.1 onlink',
    ]);
    expect(plan.bridge).toEqual([
      'fdb replace 02:00:00:00:00:02 dev tscni.1 dst 192.168.100.2 self permanent',
      'fdb replace 02:00:00:00:00:03 dev tscni.1 dst 192.168.100.3 self permanent',
    ]);
    expect(plan).toMatchObject({ changed: 2, removed: 0 });
  });

  it('does nothing when the kernel already matches', () => {
    expect(planPeers(D, [peer(2), peer(3)], applied([peer(2), peer(3)]))).toEqual({ ip: [], bridge: [], changed: 0, removed: 0 });
  });

  it('moves a node to a new underlay address with fdb replace only', () => {
    const plan = planPeers(D, [peer(2, '192.168.100.20')], applied([peer(2)]));
    expect(plan.ip).toEqual([]);
    expect(plan.bridge).toEqual(['fdb replace 02:00:00:00:00:02 dev tscni.1 dst 192.168.100.20 self permanent']);
  });

  it('removes the entries of a peer that left, deletes first', () => {
    const plan = planPeers(D, [peer(2)], applied([peer(2), peer(3)]));
    expect(plan.ip).toEqual(['route del 10.244.3.0/24 dev tscni.1', 'neigh del 10.244.3.0 dev tscni.1']);
    expect(plan.bridge).toEqual(['fdb del 02:00:00:00:00:03 dev tscni.1 self']);
    expect(plan).toMatchObject({ changed: 0, removed: 3 });
  });

  it('clears a MAC with several remotes (an old append) before replacing it', () => {
    const state = applied([peer(2)]);
    state.fdb.push({ mac: peer(2).mac, ifname: D, dst: '192.168.100.99', flags: ['self'], state: 'permanent' });
    expect(planPeers(D, [peer(2)], state).bridge).toEqual([
      'fdb del 02:00:00:00:00:02 dev tscni.1 self',
      'fdb replace 02:00:00:00:00:02 dev tscni.1 dst 192.168.100.2 self permanent',
    ]);
  });

  it('makes a learned (non-permanent) neighbour permanent, ignores IPv6 and other devices', () => {
    const state = applied([peer(2)]);
    state.neighs[0]!.state = ['REACHABLE'];
    state.neighs.push({ dst: 'fe80::1', dev: D, lladdr: '02:00:00:00:00:aa', state: ['STALE'] });
    state.routes.push({ dst: '10.0.0.0/8', gateway: '10.1.1.1', dev: 'eth0' });
    expect(planPeers(D, [peer(2)], state).ip).toEqual(['neigh replace 10.244.2.0 lladdr 02:00:00:00:00:02 dev tscni.1 nud permanent']);
  });

  it('reports missing entries for CHECK', () => {
    const state = applied([peer(2), peer(3)]);
    state.fdb.pop();
    expect(missingPeerEntries(D, [peer(2), peer(3)], state)).toEqual(['fdb replace 02:00:00:00:00:03 dev tscni.1 dst 192.168.100.3 self permanent']);
  });
});

describe('planPeers with IPv6 entries (dual-stack and IPv6-only peers on the one device)', () => {
  it('adds a route and a permanent neighbour per family and one FDB entry per peer', () => {
    const v6only: Peer = { subnet6: 'fd00:10:244:3::/64', vtep6: 'fd00:10:244:3::', ip: 'fd00:100::3', mac: '02:00:00:00:00:03' };
    const plan = planPeers(D, [peer46(2), v6only], empty);
    expect(plan.ip).toEqual([
      'neigh replace 10.244.2.0 lladdr 02:00:00:00:00:02 dev tscni.1 nud permanent',
      'route replace 10.244.2.0/24 via 10.244.2.0 dev tscni.1 onlink',
      'neigh replace fd00:10:244:2:: lladdr 02:00:00:00:00:02 dev tscni.1 nud permanent',
      'route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev tscni.1 onlink',
      'neigh replace fd00:10:244:3:: lladdr 02:00:00:00:00:03 dev tscni.1 nud permanent',
      'route replace fd00:10:244:3::/64 via fd00:10:244:3:: dev tscni.1 onlink',
    ]);
    expect(plan.bridge).toEqual([
      'fdb replace 02:00:00:00:00:02 dev tscni.1 dst 192.168.100.2 self permanent',
      'fdb replace 02:00:00:00:00:03 dev tscni.1 dst fd00:100::3 self permanent',
    ]);
    expect(plan).toMatchObject({ changed: 2, removed: 0 });
  });

  it('leaves matching IPv6 entries and the kernel\'s link-local neighbours alone; removes a departed IPv6 half', () => {
    const state = applied([peer46(2), peer46(3)]);
    state.neighs.push({ dst: 'fe80::aa:bbff:fecc:dd01', dev: D, lladdr: '02:aa:bb:cc:dd:01', state: ['STALE'] });
    state.routes.push({ dst: 'fe80::/64', dev: D, protocol: 'kernel' });
    expect(planPeers(D, [peer46(2), peer46(3)], state)).toEqual({ ip: [], bridge: [], changed: 0, removed: 0 });
    // node 3 drops IPv6 (an IPv4-only node now): only its IPv6 route and neighbour go
    expect(planPeers(D, [peer46(2), peer(3)], state)).toEqual({ ip: ['route del fd00:10:244:3::/64 dev tscni.1', 'neigh del fd00:10:244:3:: dev tscni.1'], bridge: [], changed: 0, removed: 2 });
  });

  it('planPeerChanges gives what planPeers gives against the state dual-stack peers left', () => {
    const before = [peer46(2), peer46(3), peer(4)];
    for (const after of [[peer46(2), peer(3), peer46(4)], [peer46(2, '192.168.100.22')], [], [peer46(5), peer46(3)]]) {
      expect(planPeerChanges(D, before, after)).toEqual(planPeers(D, after, applied(before)));
    }
  });
});

describe('planPeerChanges (the plan from the peers last applied, without reading the kernel)', () => {
  /** A small deterministic generator: sets that share some peers, move some, and drop or add others. */
  function* cases(): Generator<[Peer[], Peer[]]> {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    for (let k = 0; k < 200; k++) {
      const pick = () =>
        Array.from({ length: rand(8) }, () => rand(12) + 2)
          .filter((n, i, all) => all.indexOf(n) === i)
          .map((n) => peer(n, `192.168.100.${rand(3) ? n : n + 100}`, `02:00:00:00:00:${(rand(4) ? n : n + 100).toString(16).padStart(2, '0')}`))
          .filter((p, i, all) => all.findIndex((q) => q.mac === p.mac || q.ip === p.ip) === i);
      yield [pick(), pick()];
    }
  }

  it('gives exactly the lines planPeers gives against the kernel state the earlier peers left', () => {
    let moved = 0;
    for (const [before, after] of cases()) {
      const plan = planPeerChanges(D, before, after);
      expect(plan).toEqual(planPeers(D, after, applied(before)));
      if (plan.bridge.some((l) => l.startsWith('fdb replace'))) moved++;
    }
    expect(moved).toBeGreaterThan(50);
  });

  it('is empty when nothing changed, and one line per changed entry otherwise', () => {
    expect(planPeerChanges(D, [peer(2), peer(3)], [peer(2), peer(3)])).toEqual({ ip: [], bridge: [], changed: 0, removed: 0 });
    expect(planPeerChanges(D, [peer(2), peer(3)], [peer(2), peer(3, '192.168.100.33')])).toEqual({
      ip: [],
      bridge: ['fdb replace 02:00:00:00:00:03 dev tscni.1 dst 192.168.100.33 self permanent'],
      changed: 1,
      removed: 0,
    });
  });
});

const spec: DeviceSpec = { name: D, vni: 1, port: 4789, local: '192.168.100.1', underlay: 'eth0', mac: '02:aa:bb:cc:dd:ee', mtu: 1450, vtep: '10.244.1.0' };
const link = (over: Partial<IpLink> = {}, data: Record<string, unknown> = {}): IpLink => ({
  ifindex: 5,
  ifname: D,
  flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
  mtu: 1450,
  address: '02:aa:bb:cc:dd:ee',
  addr_info: [{ family: 'inet', local: '10.244.1.0', prefixlen: 32 }],
  linkinfo: { info_kind: 'vxlan', info_data: { id: 1, local: '192.168.100.1', link: 'eth0', port: 4789, learning: false, ...data } },
  ...over,
});

describe('planDevice', () => {
  it('creates the device with nolearning, dev, local, a stable MAC and the VTEP /32', () => {
    expect(planDevice(spec, undefined).lines).toEqual([
      'link add tscni.1 address 02:aa:bb:cc:dd:ee mtu 1450 type vxlan id 1 local 192.168.100.1 dev eth0 dstport 4789 nolearning',
      'addr replace 10.244.1.0/32 dev tscni.1',
      'link set tscni.1 up',
    ]);
  });

  it('leaves a matching device alone', () => {
    expect(planDevice(spec, link())).toEqual({ lines: [] });
  });

  it('fixes MAC, MTU, address and state in place', () => {
    const current = link({ address: '02:00:00:00:00:01', mtu: 1500, flags: ['BROADCAST'], addr_info: [{ family: 'inet', local: '10.244.9.0', prefixlen: 32 }] });
    expect(planDevice(spec, current).lines).toEqual([
      'link set tscni.1 address 02:aa:bb:cc:dd:ee',
      'link set tscni.1 mtu 1450',
      'addr del 10.244.9.0/32 dev tscni.1',
      'addr replace 10.244.1.0/32 dev tscni.1',
      'link set tscni.1 up',
    ]);
  });

  it('re-creates an incompatible vxlan device and says why', () => {
    const plan = planDevice(spec, link({}, { id: 2, learning: true }));
    expect(plan.recreate).toBe('vni: 2 vs 1, learning: on vs off');
    expect(plan.lines[0]).toBe('link del tscni.1');
    expect(plan.lines).toHaveLength(4);
  });

  it('gives a dual-stack device its IPv6 VTEP /128 (nodad) and keeps the kernel\'s link-local address', () => {
    const dual = { ...spec, vtep6: 'fd00:10:244:1::' };
    expect(planDevice(dual, undefined).lines).toEqual([
      'link add tscni.1 address 02:aa:bb:cc:dd:ee mtu 1450 type vxlan id 1 local 192.168.100.1 dev eth0 dstport 4789 nolearning',
      'addr replace 10.244.1.0/32 dev tscni.1',
      'addr replace fd00:10:244:1::/128 dev tscni.1 nodad',
      'link set tscni.1 up',
    ]);
    const lla = { family: 'inet6' as const, local: 'fe80::1', prefixlen: 64, scope: 'link' };
    expect(planDevice(dual, link({ addr_info: [{ family: 'inet', local: '10.244.1.0', prefixlen: 32 }, lla, { family: 'inet6', local: 'fd00:10:244:1::', prefixlen: 128, scope: 'global' }] }))).toEqual({ lines: [] });
    expect(planDevice(dual, link({ addr_info: [{ family: 'inet', local: '10.244.1.0', prefixlen: 32 }, lla, { family: 'inet6', local: 'fd00:10:244:9::', prefixlen: 128, scope: 'global' }] })).lines).toEqual([
      'addr del fd00:10:244:9::/128 dev tscni.1',
      'addr replace fd00:10:244:1::/128 dev tscni.1 nodad',
    ]);
  });

  it('builds an IPv6-only device over an IPv6 underlay: local6, no IPv4 VTEP', () => {
    const v6 = { ...spec, local: 'fd00:100::1', vtep: undefined, vtep6: 'fd00:10:244:1::', mtu: 1430 };
    expect(planDevice(v6, undefined).lines).toEqual([
      'link add tscni.1 address 02:aa:bb:cc:dd:ee mtu 1430 type vxlan id 1 local fd00:100::1 dev eth0 dstport 4789 nolearning',
      'addr replace fd00:10:244:1::/128 dev tscni.1 nodad',
      'link set tscni.1 up',
    ]);
    const current = link({ mtu: 1430, addr_info: [{ family: 'inet6', local: 'fd00:10:244:1::', prefixlen: 128, scope: 'global' }] }, { local: undefined, local6: 'fd00:100::1' });
    expect(planDevice(v6, current)).toEqual({ lines: [] });
  });

  it('refuses to touch a device of another kind', () => {
    expect(() => planDevice(spec, link({ linkinfo: { info_kind: 'bridge' } }))).toThrow(/not a vxlan device/);
  });
});

describe('resolveUnderlay', () => {
  const eth = (name: string, local: string, family: 'inet' | 'inet6' = 'inet', mtu = 1500): IpLink => ({ ifindex: 2, ifname: name, flags: ['UP'], mtu, addr_info: [{ family, local, prefixlen: 24, scope: 'global' }] });
  it('takes the default route interface and its first IPv4 address; MTU - 50', () => {
    const u = resolveUnderlay({}, [eth('eth0', '192.168.1.5'), eth('eth1', '10.9.9.9')], [{ dst: 'default', gateway: '192.168.1.1', dev: 'eth0' }]);
    expect(u).toEqual({ dev: 'eth0', ip: '192.168.1.5', family: 4, mtu: 1500 });
    expect(u.mtu - overhead(u.family)).toBe(1450);
  });
  it('finds the interface of a given localIP; IPv6 underlay costs 70', () => {
    const u = resolveUnderlay({ localIP: 'fd00::5' }, [eth('eth0', '192.168.1.5'), eth('eth1', 'fd00::5', 'inet6', 9000)], []);
    expect(u).toMatchObject({ dev: 'eth1', family: 6 });
    expect(u.mtu - overhead(u.family)).toBe(8930);
  });
  it('fails clearly without a default route or with a missing interface', () => {
    expect(() => resolveUnderlay({}, [eth('eth0', '192.168.1.5')], [])).toThrow(/no default route/);
    expect(() => resolveUnderlay({ underlay: 'eth9' }, [eth('eth0', '192.168.1.5')], [])).toThrow(/eth9 does not exist/);
  });
});

describe('planMasq', () => {
  const chain = 'TSCNI-VXLAN-tscni.1';
  const jump = `-s 10.244.1.0/24 -m comment --comment "tscni vxlan tscni.1" -j ${chain}`;
  const rules = ['-d 10.244.0.0/16 -j RETURN', '-d 224.0.0.0/4 -j RETURN', '-j MASQUERADE'];
  it('creates the chain and the jump, masquerading only traffic leaving the cluster network', () => {
    expect(planMasq({ chains: ['POSTROUTING'], rules: [] }, 'tscni.1', '10.244.1.0/24', '10.244.0.0/16')).toBe(
      ['*nat', `:${chain} - [0:0]`, `-F ${chain}`, ...rules.map((r) => `-A ${chain} ${r}`), `-A POSTROUTING ${jump}`, 'COMMIT', ''].join('\n'),
    );
  });
  it('masquerades IPv6 pod traffic leaving the IPv6 cluster network, multicast excepted', () => {
    expect(planMasq({ chains: ['POSTROUTING'], rules: [] }, 'tscni.1', 'fd00:10:244:1::/64', 'fd00:10:244::/56', 6)).toBe(
      ['*nat', `:${chain} - [0:0]`, `-F ${chain}`, `-A ${chain} -d fd00:10:244::/56 -j RETURN`, `-A ${chain} -d ff00::/8 -j RETURN`, `-A ${chain} -j MASQUERADE`, `-A POSTROUTING -s fd00:10:244:1::/64 -m comment --comment "tscni vxlan tscni.1" -j ${chain}`, 'COMMIT', ''].join('\n'),
    );
  });
  it('is empty when the table matches, and moves the jump when the subnet changed', () => {
    const saved = { chains: ['POSTROUTING', chain], rules: [{ chain: 'POSTROUTING', spec: jump }, ...rules.map((spec) => ({ chain, spec }))] };
    expect(planMasq(saved, 'tscni.1', '10.244.1.0/24', '10.244.0.0/16')).toBe('');
    expect(planMasq(saved, 'tscni.1', '10.244.2.0/24', '10.244.0.0/16')).toContain(`-D POSTROUTING ${jump}\n-A POSTROUTING -s 10.244.2.0/24`);
  });
});
