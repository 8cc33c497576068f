import { describe, expect, it } from 'vitest';
import type { IpLink } from '../../lib/ip/types.ts';
import { overhead, planDevice, resolveUnderlay, type DeviceSpec } from '../../plugins/vxlan/device.ts';
import { missingPeerEntries, planPeerChanges, planPeers, type PeerState } from '../../plugins/vxlan/reconcile.ts';
import type { Peer } from '../../plugins/vxlan/peers.ts';
import { planMasq } from '../../plugins/vxlan/masq.ts';

const D = 'tscni.1';
const peer = (n: number, ip = `192.168.100.${n}`, mac = `02:00:00:00:00:0${n}`): Peer => ({ subnet: `10.244.${n}.0/24`, ip, mac, vtep: `10.244.${n}.0` });
const empty: PeerState = { routes: [], neighs: [], fdb: [] };
/** The kernel state after `planPeers` applied `peers`, as `ip -json` / `bridge -json fdb` print it. */
const applied = (peers: readonly Peer[]): PeerState => ({
  routes: peers.map((p) => ({ dst: p.subnet, gateway: p.vtep, dev: D, flags: ['onlink'], protocol: 'boot' })),
  neighs: peers.map((p) => ({ dst: p.vtep, dev: D, lladdr: p.mac, state: ['PERMANENT'] })),
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
  it('is empty when the table matches, and moves the jump when the subnet changed', () => {
    const saved = { chains: ['POSTROUTING', chain], rules: [{ chain: 'POSTROUTING', spec: jump }, ...rules.map((spec) => ({ chain, spec }))] };
    expect(planMasq(saved, 'tscni.1', '10.244.1.0/24', '10.244.0.0/16')).toBe('');
    expect(planMasq(saved, 'tscni.1', '10.244.2.0/24', '10.244.0.0/16')).toContain(`-D POSTROUTING ${jump}\n-A POSTROUTING -s 10.244.2.0/24`);
  });
});
