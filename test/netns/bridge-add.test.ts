import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cnitool, execPlugin, writeConflist } from '../support/cni.ts';
import { dropNftTableIfEmpty, ipJson, pings } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { PLUGIN_VERSIONS } from '../support/versions.ts';

const BRIDGE = join(OUR_BIN, 'bridge');

/** Per-scope subnets, so parallel workers never share one. */
function subnets(s: Scope) {
  const h = createHash('sha256').update(s.prefix).digest();
  return { v4: `10.${200 + (h[0]! % 50)}.${h[1]!}`, v6: `fd${h[2]!.toString(16).padStart(2, '0')}:${h.readUInt16BE(3).toString(16)}` };
}

function setup(s: Scope, extra: Record<string, unknown> = {}, ranges?: unknown[]) {
  const net = subnets(s);
  const bridge = s.link(s.name('br'));
  const dataDir = s.tmpdir();
  const name = `${s.prefix}-net`;
  const conf = {
    name,
    type: 'bridge',
    bridge,
    isGateway: true,
    ipam: { type: 'host-local', dataDir, ranges: ranges ?? [[{ subnet: `${net.v4}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] },
    ...extra,
  };
  // nothing of ours may remain: rules tagged with this network's name
  s.defer(() => {
    for (const save of ['iptables-save', 'ip6tables-save']) {
      const rules = tryRun([save, '-t', 'nat']).stdout.split('\n').filter((l) => l.includes(`name: \\"${name}\\"`));
      if (rules.length) throw new Error(`leftover rules: ${rules.join('\n')}`);
    }
  });
  return { conf, net, bridge, dataDir, name };
}

const env = (s: Scope, ns: { path: string }, id = s.name('c')) => ({ CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN });
const reservations = (dataDir: string, name: string) => readdirSync(join(dataDir, name)).filter((f) => /^[0-9a-f.:]+$/.test(f));
const hostVeths = (bridge: string) => ipJson<any[]>(['link', 'show', 'master', bridge]).map((l) => l.ifname);
const natRules = (family: 4 | 6, tag: string) => sh([family === 4 ? 'iptables-save' : 'ip6tables-save', '-t', 'nat']).split('\n').filter((l) => l.includes(tag));

describe('bridge ADD/CHECK/DEL', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  for (const cniVersion of PLUGIN_VERSIONS) {
    it(`two namespaces ping each other and the gateway at ${cniVersion} (direct exec)`, () => {
      const { conf, net, bridge, dataDir, name } = setup(s);
      const c = { cniVersion, ...conf };
      const [a, b] = [s.netns(), s.netns()];
      const [ea, eb] = [env(s, a), env(s, b)];
      const addA = execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'ADD' }, c);
      const addB = execPlugin(BRIDGE, { ...eb, CNI_COMMAND: 'ADD' }, c);
      expect(addA.status, addA.stdout + addA.stderr).toBe(0);
      expect(addB.status, addB.stdout + addB.stderr).toBe(0);
      expect(addA.json.cniVersion).toBe(cniVersion);
      const ipA = cniVersion === '0.3.1' || cniVersion === '0.4.0' ? { version: '4', interface: 2, address: `${net.v4}.2/24`, gateway: `${net.v4}.1` } : { interface: 2, address: `${net.v4}.2/24`, gateway: `${net.v4}.1` };
      expect(addA.json.ips).toEqual([ipA]);
      expect(addA.json.routes).toEqual([{ dst: '0.0.0.0/0' }]);
      expect(addA.json.interfaces.map((i: any) => i.name)).toEqual([bridge, expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
      expect(addA.json.interfaces[2].sandbox).toBe(a.path);
      const eth0 = ipJson<any[]>(['addr', 'show', 'eth0'], a.name)[0];
      expect(eth0.address).toBe(addA.json.interfaces[2].mac);
      expect(eth0.addr_info.filter((x: any) => x.family === 'inet').map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual([`${net.v4}.2/24`]);
      expect(ipJson<any[]>(['route', 'show', 'default'], a.name)[0]).toMatchObject({ gateway: `${net.v4}.1`, dev: 'eth0' });
      expect(hostVeths(bridge).sort()).toEqual([addA.json.interfaces[1].name, addB.json.interfaces[1].name].sort());
      expect(pings(a.name, `${net.v4}.3`)).toBe(true);
      expect(pings(b.name, `${net.v4}.1`)).toBe(true);
      if (cniVersion !== '0.3.1') {
        const check = execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'CHECK' }, { ...c, prevResult: addA.json });
        expect(check.status, check.stdout).toBe(0);
      }
      for (const [e, add] of [[ea, addA], [eb, addB]] as const) {
        const del = execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'DEL' }, { ...c, prevResult: add.json });
        expect(del.status, del.stdout).toBe(0);
        expect(del.stdout).toBe('');
      }
      expect(hostVeths(bridge)).toEqual([]);
      expect(reservations(dataDir, name)).toEqual([]);
      // DEL again, and with the netns gone: still success
      expect(execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'DEL' }, c).status).toBe(0);
      expect(execPlugin(BRIDGE, { ...ea, CNI_NETNS: '/run/netns/nonexistent', CNI_COMMAND: 'DEL' }, c).status).toBe(0);
    });

    // libcni 1.1.2 (cnitool) speaks up to 1.0.0
    it.skipIf(cniVersion === '1.1.0')(`works through cnitool at ${cniVersion}: add, check, del`, () => {
      const { conf, net, bridge, dataDir, name } = setup(s);
      const confDir = s.tmpdir();
      const { name: _n, ...plugin } = conf;
      writeConflist(confDir, { cniVersion, name, plugins: [plugin] });
      const ns = s.netns();
      const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), containerId: s.name('c') };
      const add = cnitool('add', name, ns.path, e);
      expect(add.status, add.stderr).toBe(0);
      expect(add.json.ips[0].address).toBe(`${net.v4}.2/24`);
      expect(pings(ns.name, `${net.v4}.1`)).toBe(true);
      if (cniVersion !== '0.3.1') expect(cnitool('check', name, ns.path, e).status).toBe(0);
      expect(cnitool('del', name, ns.path, e).status).toBe(0);
      expect(hostVeths(bridge)).toEqual([]);
      expect(reservations(dataDir, name)).toEqual([]);
    });
  }

  it('IPv6 only: address without DAD (accept_dad=0), routes, ping the gateway', () => {
    const net = subnets(s);
    const { conf, bridge } = setup(s, { isDefaultGateway: true }, [[{ subnet: `${net.v6}::/64` }]]);
    const c = { cniVersion: '1.0.0', ...conf, ipam: { ...conf.ipam, routes: [] } };
    const ns = s.netns();
    const e = env(s, ns);
    const add = execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'ADD' }, c);
    expect(add.status, add.stdout).toBe(0);
    expect(add.json.ips).toEqual([{ interface: 2, address: `${net.v6}::2/64`, gateway: `${net.v6}::1` }]);
    expect(add.json.routes).toEqual([{ dst: '::/0', gw: `${net.v6}::1` }]);
    const v6 = ipJson<any[]>(['-6', 'addr', 'show', 'eth0'], ns.name)[0].addr_info;
    expect(v6.find((a: any) => a.scope === 'global')).toMatchObject({ local: `${net.v6}::2`, prefixlen: 64 });
    expect(v6.some((a: any) => a.tentative)).toBe(false);
    expect(sh(['ip', 'netns', 'exec', ns.name, 'cat', '/proc/sys/net/ipv6/conf/eth0/accept_dad']).trim()).toBe('0');
    expect(ipJson<any[]>(['-6', 'route', 'show', 'default'], ns.name)[0]).toMatchObject({ gateway: `${net.v6}::1` });
    expect(ipJson<any[]>(['-6', 'addr', 'show', bridge])[0].addr_info.some((a: any) => a.local === `${net.v6}::1`)).toBe(true);
    expect(sh(['cat', '/proc/sys/net/ipv6/conf/all/forwarding']).trim()).toBe('1');
    // the bridge's gateway address does DAD (as the reference leaves it): retry ping until it settles
    expect(pings(ns.name, `${net.v6}::1`, ['-w', '5'])).toBe(true);
    expect(execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'DEL' }, c).status).toBe(0);
  });

  it('dual-stack: both families on eth0, both gateways on the bridge, two namespaces ping over both', () => {
    const net = subnets(s);
    const { conf } = setup(s, {}, [[{ subnet: `${net.v4}.0/24` }], [{ subnet: `${net.v6}::/64` }]]);
    const c = { cniVersion: '1.1.0', ...conf };
    const [a, b] = [s.netns(), s.netns()];
    const adds = [a, b].map((ns) => execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, c));
    for (const add of adds) expect(add.status, add.stdout).toBe(0);
    expect(adds[0]!.json.ips.map((i: any) => i.address)).toEqual([`${net.v4}.2/24`, `${net.v6}::2/64`]);
    expect(pings(a.name, `${net.v4}.3`)).toBe(true);
    expect(pings(a.name, `${net.v6}::3`, ['-w', '5'])).toBe(true);
  });

  it('mtu, hairpinMode and promiscMode reach the kernel', () => {
    const { conf, bridge } = setup(s, { mtu: 1400, hairpinMode: true });
    const ns = s.netns();
    const add = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...conf });
    expect(add.status, add.stdout).toBe(0);
    expect(ipJson<any[]>(['link', 'show', 'eth0'], ns.name)[0].mtu).toBe(1400);
    expect(ipJson<any[]>(['link', 'show', bridge])[0].mtu).toBe(1400);
    const port = ipJson<any[]>(['-d', 'link', 'show', add.json.interfaces[1].name])[0];
    expect(port.mtu).toBe(1400);
    expect(port.linkinfo.info_slave_data.hairpin).toBe(true);

    const p = setup(s, { promiscMode: true, portIsolation: true });
    const ns2 = s.netns();
    const add2 = execPlugin(BRIDGE, { ...env(s, ns2), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...p.conf });
    expect(add2.status, add2.stdout).toBe(0);
    expect(ipJson<any[]>(['link', 'show', p.bridge])[0].flags).toContain('PROMISC');
    expect(ipJson<any[]>(['-d', 'link', 'show', add2.json.interfaces[1].name])[0].linkinfo.info_slave_data.isolated).toBe(true);
    expect(execPlugin(BRIDGE, { ...env(s, ns2), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...p.conf, hairpinMode: true }).json.code).toBe(7);
  });

  it('MAC from CNI_ARGS < args.cni.mac < runtimeConfig.mac', () => {
    const { conf } = setup(s);
    const run = (extra: Record<string, unknown>, args?: string) => {
      const ns = s.netns();
      const add = execPlugin(BRIDGE, { ...env(s, ns), CNI_ARGS: args, CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...conf, ...extra });
      expect(add.status, add.stdout).toBe(0);
      expect(ipJson<any[]>(['link', 'show', 'eth0'], ns.name)[0].address).toBe(add.json.interfaces[2].mac);
      return add.json.interfaces[2].mac;
    };
    // host-local, like the reference's, refuses CNI_ARGS it does not know unless IgnoreUnknown is set
    expect(run({}, 'IgnoreUnknown=1;MAC=02:00:00:00:00:01')).toBe('02:00:00:00:00:01');
    expect(run({ args: { cni: { mac: '02:00:00:00:00:02' } } }, 'IgnoreUnknown=1;MAC=02:00:00:00:00:01')).toBe('02:00:00:00:00:02');
    expect(run({ args: { cni: { mac: '02:00:00:00:00:02' } }, runtimeConfig: { mac: '02:00:00:00:00:03' } })).toBe('02:00:00:00:00:03');
  });

  it('forceAddress replaces a different gateway address on the bridge; without it ADD fails and leaves nothing', () => {
    const { conf, net, bridge, dataDir, name } = setup(s);
    sh(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    sh(['ip', 'addr', 'add', `${net.v4}.254/24`, 'dev', bridge]);
    const ns = s.netns();
    const refused = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...conf });
    expect(refused.status).toBe(1);
    expect(refused.json.msg).toMatch(/already has an IP address different from/);
    expect(hostVeths(bridge)).toEqual([]);
    expect(reservations(dataDir, name)).toEqual([]);
    expect(ipJson<any[]>(['link'], ns.name).map((l) => l.ifname)).toEqual(['lo']);
    const forced = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...conf, forceAddress: true });
    expect(forced.status, forced.stdout).toBe(0);
    const v4 = ipJson<any[]>(['-4', 'addr', 'show', bridge])[0].addr_info.map((a: any) => a.local);
    expect(v4).toEqual([`${net.v4}.1`]);
  });

  for (const backend of ['iptables', 'nftables'] as const) {
    it(`ipMasq (${backend}): one rule set per container, removed on DEL even without prevResult or netns`, () => {
      const net = subnets(s);
      const { conf, name } = setup(s, { ipMasq: true, ipMasqBackend: backend }, [[{ subnet: `${net.v4}.0/24` }], [{ subnet: `${net.v6}::/64` }]]);
      const c = { cniVersion: '1.0.0', ...conf };
      const [a, b] = [s.netns(), s.netns()];
      const [ea, eb] = [env(s, a), env(s, b)];
      expect(execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'ADD' }, c).status).toBe(0);
      expect(execPlugin(BRIDGE, { ...eb, CNI_COMMAND: 'ADD' }, c).status).toBe(0);
      const mine = (id: string) => {
        if (backend === 'iptables') return [...natRules(4, `id: \\"${id}\\"`), ...natRules(6, `id: \\"${id}\\"`)];
        const chain = JSON.parse(sh(['nft', '-j', 'list', 'chain', 'inet', 'tscni_masquerade', 'postrouting'])).nftables;
        const hash = createHash('sha512').update(name + id).digest('hex').slice(0, 24);
        return chain.filter((o: any) => o.rule?.comment?.endsWith(hash));
      };
      if (backend === 'iptables') {
        expect(natRules(4, `id: \\"${ea.CNI_CONTAINERID}\\"`).map((l) => l.replace(/CNI-[0-9a-f]+/, 'CHAIN').replace(/--comment ".*" -j/, 'C -j'))).toEqual([
          `-A POSTROUTING -s ${net.v4}.2/32 -m comment C -j CHAIN`,
          `-A CHAIN -d ${net.v4}.0/24 -m comment C -j ACCEPT`,
          `-A CHAIN ! -d 224.0.0.0/4 -m comment C -j MASQUERADE`,
        ]);
        expect(natRules(6, `id: \\"${ea.CNI_CONTAINERID}\\"`)).toHaveLength(3);
      } else {
        expect(mine(ea.CNI_CONTAINERID)).toHaveLength(2);
        s.defer(() => dropNftTableIfEmpty('inet', 'tscni_masquerade'));
      }
      expect(mine(eb.CNI_CONTAINERID).length).toBeGreaterThan(0);
      // containerd CRI's second DEL: no netns, no prevResult
      expect(execPlugin(BRIDGE, { ...ea, CNI_NETNS: '', CNI_COMMAND: 'DEL' }, c).status).toBe(0);
      expect(mine(ea.CNI_CONTAINERID)).toEqual([]);
      expect(mine(eb.CNI_CONTAINERID).length).toBeGreaterThan(0);
      // GC keeps only the valid attachments
      const gc = execPlugin(BRIDGE, { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { ...c, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
      expect(gc.status, gc.stdout).toBe(0);
      expect(mine(eb.CNI_CONTAINERID)).toEqual([]);
      expect(execPlugin(BRIDGE, { ...eb, CNI_COMMAND: 'DEL' }, c).status).toBe(0);
    });
  }

  it('ipMasq (iptables): DEL with prevResult removes both families\' rules (one restore each, no read); a repeated DEL still succeeds', () => {
    const net = subnets(s);
    const { conf } = setup(s, { ipMasq: true }, [[{ subnet: `${net.v4}.0/24` }], [{ subnet: `${net.v6}::/64` }]]);
    const c = { cniVersion: '1.0.0', ...conf };
    const [a, b] = [s.netns(), s.netns()];
    const [ea, eb] = [env(s, a), env(s, b)];
    const add = execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'ADD' }, c);
    expect(add.status, add.stdout).toBe(0);
    expect(execPlugin(BRIDGE, { ...eb, CNI_COMMAND: 'ADD' }, c).status).toBe(0);
    const mine = (id: string) => [...natRules(4, `id: \\"${id}\\"`), ...natRules(6, `id: \\"${id}\\"`)];
    expect(mine(ea.CNI_CONTAINERID)).toHaveLength(6);
    const withPrev = { ...c, prevResult: add.json };
    const del = execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'DEL' }, withPrev);
    expect(del.status, del.stdout + del.stderr).toBe(0);
    expect(mine(ea.CNI_CONTAINERID)).toEqual([]);
    expect(mine(eb.CNI_CONTAINERID)).toHaveLength(6);
    // the rules are gone: the one-transaction delete fails, the read-and-plan path finds nothing
    expect(execPlugin(BRIDGE, { ...ea, CNI_COMMAND: 'DEL' }, withPrev).status).toBe(0);
    expect(mine(eb.CNI_CONTAINERID)).toHaveLength(6);
    expect(execPlugin(BRIDGE, { ...eb, CNI_COMMAND: 'DEL' }, c).status).toBe(0);
    expect(mine(eb.CNI_CONTAINERID)).toEqual([]);
  });

  it('CHECK reports a removed address and a veth taken off the bridge', () => {
    const { conf, net } = setup(s);
    const c = { cniVersion: '1.0.0', ...conf };
    const ns = s.netns();
    const e = env(s, ns);
    const add = execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'ADD' }, c);
    expect(add.status).toBe(0);
    const check = () => execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'CHECK' }, { ...c, prevResult: add.json });
    expect(check().status).toBe(0);
    sh(['ip', '-n', ns.name, 'addr', 'del', `${net.v4}.2/24`, 'dev', 'eth0']);
    expect(check().json.msg).toBe(`Failed to match addr ${net.v4}.2/24 on interface eth0`);
    sh(['ip', '-n', ns.name, 'addr', 'add', `${net.v4}.2/24`, 'dev', 'eth0']);
    sh(['ip', '-n', ns.name, 'route', 'add', 'default', 'via', `${net.v4}.1`]);
    expect(check().status).toBe(0);
    sh(['ip', 'link', 'set', add.json.interfaces[1].name, 'nomaster']);
    expect(check().json.msg).toBe(`veth ${add.json.interfaces[1].name} is not attached to bridge ${conf.bridge}`);
  });

  it('bad input fails with code 7 and touches nothing', () => {
    const { conf, bridge } = setup(s);
    const ns = s.netns();
    for (const bad of [{ vlan: 5000 }, { mtu: 10 }, { bridge: 'a b' }, { runtimeConfig: { mac: '01:00:00:00:00:01' } }, { vlanTrunk: [{ minID: 5 }] }, { ipMasqBackend: 'pf' }]) {
      const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, { cniVersion: '1.0.0', ...conf, ...bad });
      expect(r.json.code, JSON.stringify(bad)).toBe(7);
    }
    expect(tryRun(['ip', 'link', 'show', bridge]).status).not.toBe(0);
  });
});
