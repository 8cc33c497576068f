import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { PLUGIN_VERSIONS } from '../support/versions.ts';

const LIMIT = 2_000_000; // bits/s

describe('bandwidth', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /**
   * A test bridge (no address on the host) with a "container" namespace and a peer namespace on it:
   * traffic between them crosses the container's host veth, where the shaping sits.
   */
  function topology() {
    const br = s.link(s.name('b'));
    sh(['ip', 'link', 'add', br, 'type', 'bridge']);
    sh(['ip', 'link', 'set', br, 'up']);
    const make = (addr: string) => {
      const ns = s.netns();
      const host = s.link(s.name('h'));
      sh(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      sh(['ip', 'link', 'set', host, 'master', br, 'up']);
      sh(['ip', '-n', ns.name, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', ns.name, 'link', 'set', 'eth0', 'up']);
      return { ns, host, addr };
    };
    const c = make('10.231.7.2');
    const peer = make('10.231.7.3');
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: br }, { name: c.host }, { name: 'eth0', sandbox: c.ns.path }], ips: [{ address: '10.231.7.2/24', interface: 2 }] };
    return { br, c, peer, prevResult };
  }

  /** iperf3 between two test namespaces: bits/s received; `reverse` sends from the server side. */
  let port = 5301;
  function measure(serverNs: string, clientNs: string, addr: string, reverse: boolean): number {
    const p = String(port++); // a fresh server per measurement: a finishing one may still hold its port
    const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', addr, '-p', p], { stdio: 'ignore' });
    s.defer(() => server.kill());
    let out = '';
    for (let i = 0; i < 50; i++) {
      const r = tryRun(['ip', 'netns', 'exec', clientNs, 'iperf3', '-c', addr, '-p', p, '-n', '250K', '-J', ...(reverse ? ['-R'] : [])]);
      out = r.stdout + r.stderr;
      const bps = r.status === 0 ? JSON.parse(r.stdout).end?.sum_received?.bits_per_second : undefined;
      if (typeof bps === 'number') return bps;
      sh(['sleep', '0.1']);
    }
    throw new Error(`iperf3 failed: ${out}`);
  }

  const links = () => new Set(ipJson<any[]>(['link', 'show']).map((l) => l.ifname).filter((n: string) => n.startsWith(s.prefix) || n.startsWith('bwp')));

  it('limits ingress and egress rate, visible in measured transfers, and DEL removes the shaping', () => {
    const { c, peer, prevResult } = topology();
    const before = links();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: c.ns.path, CNI_IFNAME: 'eth0' };
    const conf = { cniVersion: '1.0.0', name: 'bw-net', type: 'bandwidth', ingressRate: LIMIT, ingressBurst: 100_000, egressRate: LIMIT, egressBurst: 100_000, prevResult };
    const add = execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'ADD' }, conf);
    expect(add.status, add.stdout + add.stderr).toBe(0);
    const ifb = add.json.interfaces[3];
    s.defer(() => tryRun(['ip', 'link', 'del', ifb.name]));
    expect(ifb.name).toMatch(/^bwp[0-9a-f]{12}$/);
    expect(ifb.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const qd = (dev: string) => JSON.parse(sh(['tc', '-json', 'qdisc', 'show', 'dev', dev]));
    expect(qd(c.host).find((q: any) => q.kind === 'tbf').options.rate).toBe(LIMIT / 8);
    expect(qd(c.host).some((q: any) => q.kind === 'ingress')).toBe(true);
    expect(qd(ifb.name).find((q: any) => q.kind === 'tbf').options.rate).toBe(LIMIT / 8);
    expect(execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'CHECK' }, { ...conf, prevResult: add.json }).status).toBe(0);

    const intoContainer = measure(c.ns.name, peer.ns.name, c.addr, false);
    const outOfContainer = measure(c.ns.name, peer.ns.name, c.addr, true);
    expect(intoContainer).toBeLessThan(LIMIT * 1.5);
    expect(outOfContainer).toBeLessThan(LIMIT * 1.5);

    const del = execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'DEL' }, { ...conf, prevResult: add.json });
    expect(del.status, del.stdout).toBe(0);
    expect(links()).toEqual(before);
    expect(qd(c.host).map((q: any) => q.kind)).not.toContain('tbf');
    expect(qd(c.host).map((q: any) => q.kind)).not.toContain('ingress');
    expect(measure(c.ns.name, peer.ns.name, c.addr, true)).toBeGreaterThan(LIMIT * 5);
    expect(execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, { ...conf, prevResult: undefined }).status).toBe(0);
  });

  for (const cniVersion of PLUGIN_VERSIONS) {
    it(`takes CRI's capitalized runtimeConfig.bandwidth; DEL without prevResult removes the ifb (${cniVersion})`, () => {
      const { c, prevResult } = topology();
      const before = links();
      const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: c.ns.path, CNI_IFNAME: 'eth0' };
      const prev = cniVersion.startsWith('0.') ? { ...prevResult, cniVersion, ips: [{ version: '4', address: '10.231.7.2/24', interface: 2 }] } : { ...prevResult, cniVersion };
      const conf = { cniVersion, name: 'bw-net', type: 'bandwidth', capabilities: { bandwidth: true }, runtimeConfig: { bandwidth: { IngressRate: 8_000_000, IngressBurst: 4294967295, EgressRate: 16_000_000, EgressBurst: 4294967295 } }, prevResult: prev };
      const add = execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'ADD' }, conf);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json.cniVersion).toBe(cniVersion);
      const ifb = add.json.interfaces[3].name;
      s.defer(() => tryRun(['ip', 'link', 'del', ifb]));
      expect(JSON.parse(sh(['tc', '-json', 'qdisc', 'show', 'dev', ifb]))[0].options.rate).toBe(2_000_000);
      const del = execPlugin(join(OUR_BIN, 'bandwidth'), { ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, { ...conf, prevResult: undefined });
      expect(del.status, del.stdout).toBe(0);
      expect(links()).toEqual(before);
    });
  }

  it('refuses a rate without a burst (code 7) and a non-veth host interface, leaving nothing', () => {
    const { br, c, prevResult } = topology();
    const before = links();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: c.ns.path, CNI_IFNAME: 'eth0', CNI_COMMAND: 'ADD' };
    const base = { cniVersion: '1.0.0', name: 'bw-net', type: 'bandwidth', prevResult };
    const noBurst = execPlugin(join(OUR_BIN, 'bandwidth'), env, { ...base, egressRate: 1000 });
    expect([noBurst.status, noBurst.json.code, noBurst.json.msg]).toEqual([1, 7, 'if egressRate is set, egressBurst must also be set']);
    const noVeth = execPlugin(join(OUR_BIN, 'bandwidth'), env, { ...base, egressRate: 1000, egressBurst: 100000, prevResult: { ...prevResult, interfaces: [{ name: br }, prevResult.interfaces[2]] } });
    expect(noVeth.status).toBe(1);
    expect(noVeth.json.msg).toMatch(/veth/);
    expect(links()).toEqual(before);
    // No limits at all: prevResult passes through untouched.
    const none = execPlugin(join(OUR_BIN, 'bandwidth'), env, base);
    expect(none.json.interfaces).toEqual(prevResult.interfaces);
  });

  it('GC removes ifb devices of attachments not in the valid list', () => {
    const { c, prevResult } = topology();
    const conf = { cniVersion: '1.1.0', name: `bw-${s.prefix}`, type: 'bandwidth', egressRate: LIMIT, egressBurst: 100_000, prevResult };
    const add = execPlugin(join(OUR_BIN, 'bandwidth'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${s.prefix}gone`, CNI_NETNS: c.ns.path, CNI_IFNAME: 'eth0' }, conf);
    expect(add.status, add.stdout).toBe(0);
    const ifb = add.json.interfaces[3].name;
    s.defer(() => tryRun(['ip', 'link', 'del', ifb]));
    const gc = (valid: object[]) => execPlugin(join(OUR_BIN, 'bandwidth'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { ...conf, prevResult: undefined, 'cni.dev/valid-attachments': valid });
    expect(gc([{ containerID: `${s.prefix}gone`, ifname: 'eth0' }]).status).toBe(0);
    expect(tryRun(['ip', 'link', 'show', ifb]).status).toBe(0);
    expect(gc([]).status).toBe(0);
    expect(tryRun(['ip', 'link', 'show', ifb]).status).not.toBe(0);
  });
});
