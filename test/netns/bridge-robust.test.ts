import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { dropNftTableIfEmpty, ipJson, pings } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { runAsync } from '../support/run-async.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { networkHash } from '../../lib/digest.ts';

const BRIDGE = join(OUR_BIN, 'bridge');

function setup(s: Scope, extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) {
  const h = createHash('sha256').update(s.prefix).digest();
  const v4 = `10.${150 + (h[0]! % 40)}.${h[1]!}`;
  const bridge = s.link(s.name('br'));
  const dataDir = s.tmpdir();
  const name = `${s.prefix}-net`;
  const conf = { cniVersion: '1.0.0', name, type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir, subnet: `${v4}.0/24`, ...ipam }, ...extra };
  return { conf, v4, bridge, dataDir, name };
}

const env = (s: Scope, ns: { path: string }, id = s.name('c')) => ({ CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN });

const execAsync = (file: string, envVars: Record<string, string>, conf: unknown) => runAsync([file], { env: { PATH: process.env.PATH, ...envVars }, input: JSON.stringify(conf) });

/** What must be gone after a failed ADD or a DEL: veths on the bridge, reservations, tagged rules. */
function leftovers(bridge: string, dataDir: string, name: string) {
  const ports = tryRun(['ip', '-json', 'link', 'show', 'master', bridge]).stdout;
  const dir = join(dataDir, name);
  return {
    veths: ports.trim() ? JSON.parse(ports).map((l: any) => l.ifname) : [],
    reservations: existsSync(dir) ? readdirSync(dir).filter((f) => /^[0-9]/.test(f)) : [],
    rules: sh(['iptables-save', '-t', 'nat']).split('\n').filter((l) => l.includes(`name: \\"${name}\\"`)),
  };
}
const nothing = { veths: [], reservations: [], rules: [] };

describe('bridge under load and failure', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('100 concurrent first ADDs onto one cold bridge all succeed, distinct, ping the gateway; all DELs leave nothing', async () => {
    const { conf, v4, bridge, dataDir, name } = setup(s);
    const namespaces = Array.from({ length: 100 }, () => s.netns());
    const envs = namespaces.map((ns) => env(s, ns));
    const adds = await Promise.all(envs.map((e) => execAsync(BRIDGE, { ...e, CNI_COMMAND: 'ADD' }, conf)));
    const failed = adds.filter((a) => a.status !== 0).map((a) => a.stdout);
    expect(failed).toEqual([]);
    const addrs = adds.map((a) => JSON.parse(a.stdout).ips[0].address);
    expect(new Set(addrs).size).toBe(100);
    expect(ipJson<any[]>(['link', 'show', 'master', bridge])).toHaveLength(100);
    for (const ns of namespaces) expect(pings(ns.name, `${v4}.1`), ns.name).toBe(true);
    const dels = await Promise.all(envs.map((e) => execAsync(BRIDGE, { ...e, CNI_COMMAND: 'DEL' }, conf)));
    expect(dels.filter((d) => d.status !== 0).map((d) => d.stdout)).toEqual([]);
    expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
  });

  it('a failing IPAM leaves nothing (and no bridge)', () => {
    const { conf, bridge, dataDir, name } = setup(s, {}, { subnet: 'nonsense' });
    const ns = s.netns();
    const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, conf);
    expect(r.status).toBe(1);
    expect(tryRun(['ip', 'link', 'show', bridge]).status).not.toBe(0);
    expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
    const missing = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, { ...conf, ipam: { type: 'no-such-ipam' } });
    expect(missing.json.msg).toMatch(/failed to find plugin "no-such-ipam"/);
  });

  it('a name taken inside the netns fails the veth step: IPAM released, no veth', () => {
    const { conf, bridge, dataDir, name } = setup(s);
    const ns = s.netns();
    sh(['ip', '-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other']);
    const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, conf);
    expect(r.json.msg).toBe('container veth name provided (eth0) already exists');
    expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
    expect(ipJson<any[]>(['link'], ns.name).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo', 'other']); // theirs, untouched
  });

  it('a route that cannot be added fails the container step: veth, IPAM and nothing else left', () => {
    const { conf, bridge, dataDir, name } = setup(s, {}, { routes: [{ dst: '192.0.2.0/24', gw: '198.51.100.1' }] });
    const ns = s.netns();
    const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, conf);
    expect(r.status).toBe(1);
    expect(r.json.msg).toMatch(/failed to configure eth0/);
    expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
    expect(ipJson<any[]>(['link'], ns.name).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('a link that is not a bridge fails the host step with the reference message; IPAM released', () => {
    const { conf, bridge, dataDir, name } = setup(s);
    sh(['ip', 'link', 'add', bridge, 'type', 'veth', 'peer', 'name', s.name('p')]);
    const ns = s.netns();
    const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, conf);
    expect(r.json.msg).toBe(`failed to create bridge "${bridge}": "${bridge}" already exists but is not a bridge`);
    expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
  });

  /** nft rules (macspoofchk) tagged with this network; the shared table goes when the test ends. */
  const macspoofTable = () => s.defer(() => dropNftTableIfEmpty('bridge', 'tscni_macspoofchk'));
  const spoofRules = (name: string) => sh(['nft', 'list', 'ruleset']).split('\n').filter((l) => l.includes(`tscni ${networkHash(name)} `));

  it('macspoofchk: a drop rule for other source MACs on the host veth while attached, gone after DEL', () => {
    macspoofTable();
    const { conf, name } = setup(s, { macspoofchk: true });
    const ns = s.netns();
    const e = env(s, ns);
    const add = execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'ADD' }, conf);
    expect(add.status, add.stdout).toBe(0);
    const rules = spoofRules(name);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toContain(`iifname "${add.json.interfaces[1].name}" ether saddr != ${add.json.interfaces[2].mac} drop`);
    expect(execPlugin(BRIDGE, { ...e, CNI_COMMAND: 'DEL' }, { ...conf, prevResult: add.json }).status).toBe(0);
    expect(spoofRules(name)).toEqual([]);
  });

  // TSCNI_FAULT fails ADD at a step (its inverse already pushed) or at commit, after every step.
  for (const fault of ['release IPAM', 'delete veth', 'remove masquerade', 'remove macspoofchk', 'commit']) {
    it(`a failure at step "${fault}" leaves no link, reservation, masquerade or macspoofchk rule`, () => {
      macspoofTable();
      const { conf, bridge, dataDir, name } = setup(s, { macspoofchk: true });
      const ns = s.netns();
      const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD', TSCNI_FAULT: fault }, conf);
      expect(r.status).toBe(1);
      expect(r.json.msg).toMatch(/^injected fault at step/);
      expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
      expect(spoofRules(name)).toEqual([]);
      expect(ipJson<any[]>(['link'], ns.name).map((l) => l.ifname)).toEqual(['lo']);
    });
  }

  it('vlan needs bridge VLAN filtering: where the kernel lacks it, ADD fails cleanly', () => {
    const probe = s.name('vf');
    const supported = tryRun(['ip', 'link', 'add', probe, 'type', 'bridge', 'vlan_filtering', '1']).status === 0;
    tryRun(['ip', 'link', 'del', probe]);
    const { conf, bridge, dataDir, name } = setup(s, { vlan: 100, isGateway: false, ipMasq: false });
    const ns = s.netns();
    const r = execPlugin(BRIDGE, { ...env(s, ns), CNI_COMMAND: 'ADD' }, conf);
    if (supported) {
      expect(r.status, r.stdout).toBe(0);
      const vlans = JSON.parse(sh(['bridge', '-j', 'vlan', 'show', 'dev', r.json.interfaces[1].name]));
      expect(JSON.stringify(vlans)).toMatch(/"vlan":100/);
    } else {
      expect(r.json.msg).toBe(`failed to create bridge "${bridge}"`);
      expect(leftovers(bridge, dataDir, name)).toEqual(nothing);
    }
  });
});
