import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh } from '../support/scope.ts';
import { PLUGIN_VERSIONS } from '../support/versions.ts';


describe('tuning', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** A namespace with an eth0 (veth to the host), as a main plugin leaves it; its prevResult. */
  function attached() {
    const ns = s.netns();
    const host = s.link(s.name('h'));
    sh(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    const eth0 = ipJson<any[]>(['link', 'show', 'eth0'], ns.name)[0];
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: eth0.address, sandbox: ns.path }], ips: [{ address: '10.9.0.2/24', interface: 0 }] };
    return { ns, eth0, prevResult };
  }
  const sysctl = (ns: string, key: string) => sh(['ip', 'netns', 'exec', ns, 'sysctl', '-n', key]).trim();
  const link = (ns: string) => ipJson<any[]>(['-d', 'link', 'show', 'eth0'], ns)[0];

  for (const cniVersion of PLUGIN_VERSIONS) {
    it(`ADD sets sysctls, MTU, MAC, promisc, allmulti, txqlen; DEL restores them (${cniVersion})`, () => {
      const { ns, eth0, prevResult } = attached();
      const dataDir = s.tmpdir();
      const before = { ...link(ns.name), rp: sysctl(ns.name, 'net.ipv4.conf.eth0.rp_filter'), pmtu: sysctl(ns.name, 'net.ipv4.ip_no_pmtu_disc') };
      const conf = {
        cniVersion, name: 'tun-net', type: 'tuning', dataDir,
        sysctl: { 'net.ipv4.conf.IFNAME.rp_filter': '2', 'net.ipv4.ip_no_pmtu_disc': '1' },
        mtu: 1280, mac: '02:11:22:33:44:55', promisc: true, allmulti: true, txQLen: 77,
        prevResult: cniVersion === '1.0.0' || cniVersion === '1.1.0' ? { ...prevResult, cniVersion } : { ...prevResult, cniVersion, ips: [{ version: '4', address: '10.9.0.2/24', interface: 0 }] },
      };
      const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
      const add = execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'ADD' }, conf);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json.cniVersion).toBe(cniVersion);
      expect(add.json.interfaces[0].mac).toBe('02:11:22:33:44:55');
      expect(add.json.ips[0].address).toBe('10.9.0.2/24');
      expect(sysctl(ns.name, 'net.ipv4.conf.eth0.rp_filter')).toBe('2');
      expect(sysctl(ns.name, 'net.ipv4.ip_no_pmtu_disc')).toBe('1');
      const l = link(ns.name);
      expect({ mtu: l.mtu, address: l.address, txqlen: l.txqlen }).toEqual({ mtu: 1280, address: '02:11:22:33:44:55', txqlen: 77 });
      expect(l.flags).toEqual(expect.arrayContaining(['PROMISC', 'ALLMULTI']));
      const files = readdirSync(dataDir);
      expect(files).toEqual([`${env.CNI_CONTAINERID}_eth0.json`]);
      expect(statSync(join(dataDir, files[0]!)).mode & 0o777).toBe(0o600);
      if (cniVersion !== '0.3.1') {
        expect(execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'CHECK' }, conf).status).toBe(0);
        sh(['ip', '-n', ns.name, 'link', 'set', 'eth0', 'mtu', '1400']);
        const check = execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'CHECK' }, conf);
        expect(check.status).toBe(1);
        expect(check.json.msg).toMatch(/mtu is 1400, configured 1280/);
      }
      const del = execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'DEL' }, conf);
      expect(del.status, del.stdout).toBe(0);
      const after = link(ns.name);
      expect({ mtu: after.mtu, address: after.address, txqlen: after.txqlen, flags: after.flags }).toEqual({ mtu: before.mtu, address: eth0.address, txqlen: before.txqlen, flags: before.flags });
      expect(sysctl(ns.name, 'net.ipv4.conf.eth0.rp_filter')).toBe(before.rp);
      expect(sysctl(ns.name, 'net.ipv4.ip_no_pmtu_disc')).toBe(before.pmtu);
      expect(readdirSync(dataDir)).toEqual([]);
      // DEL again, and DEL without a netns: both succeed with nothing to do.
      expect(execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'DEL' }, conf).status).toBe(0);
      expect(execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_NETNS: '', CNI_COMMAND: 'DEL' }, { ...conf, prevResult: undefined }).status).toBe(0);
    });
  }

  it('takes MAC from CNI_ARGS, runtimeConfig and args.cni in the reference order', () => {
    const { ns, prevResult } = attached();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;MAC=02:00:00:00:00:01' };
    const base = { cniVersion: '1.0.0', name: 'tun-net', type: 'tuning', dataDir: s.tmpdir(), mac: '02:00:00:00:00:09', prevResult };
    const add = (conf: object) => execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: 'ADD' }, conf);
    expect(add(base).json.interfaces[0].mac).toBe('02:00:00:00:00:01');
    expect(add({ ...base, runtimeConfig: { mac: '02:00:00:00:00:02' } }).json.interfaces[0].mac).toBe('02:00:00:00:00:02');
    expect(add({ ...base, runtimeConfig: { mac: '02:00:00:00:00:02' }, args: { cni: { mac: '02:00:00:00:00:03' } } }).json.interfaces[0].mac).toBe('02:00:00:00:00:03');
    expect(link(ns.name).address).toBe('02:00:00:00:00:03');
  });

  it('refuses bad input with code 7 before touching anything', () => {
    const { ns, eth0, prevResult } = attached();
    const dataDir = s.tmpdir();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_COMMAND: 'ADD' };
    const base = { cniVersion: '1.0.0', name: 'tun-net', type: 'tuning', dataDir, mtu: 1300, prevResult };
    for (const bad of [
      { sysctl: { 'kernel.hostname': 'x' } },
      { sysctl: { 'net.ipv4/../../kernel/hostname': 'x' } },
      { sysctl: { 'net.ipv4.ip_forward': '1\nx' } },
      { mac: 'nope' },
      { mtu: 20 },
      { prevResult: undefined },
    ]) {
      const r = execPlugin(join(OUR_BIN, 'tuning'), env, { ...base, ...bad });
      expect(r.status, JSON.stringify(bad)).toBe(1);
      expect(r.json.code, JSON.stringify(bad)).toBe(7);
    }
    // A sysctl that does not exist fails the ADD after the MTU was read: nothing stays changed.
    const r = execPlugin(join(OUR_BIN, 'tuning'), env, { ...base, sysctl: { 'net.ipv4.conf.IFNAME.nope': '1' } });
    expect(r.status).toBe(1);
    expect(link(ns.name).mtu).toBe(eth0.mtu);
    expect(readdirSync(dataDir)).toEqual([]);
    // dataDir is checked by every verb, not only ADD: DEL and GC never read or remove files outside it
    for (const command of ['ADD', 'DEL', 'GC']) {
      const escaping = execPlugin(join(OUR_BIN, 'tuning'), { ...env, CNI_COMMAND: command, CNI_PATH: OUR_BIN }, { ...base, cniVersion: '1.1.0', dataDir: `${dataDir}/../x`, 'cni.dev/valid-attachments': [] });
      expect(escaping.json?.code, command).toBe(7);
    }
  });

  it('GC removes saved state of attachments that are no longer valid', () => {
    const { ns, prevResult } = attached();
    const dataDir = s.tmpdir();
    const conf = { cniVersion: '1.1.0', name: 'tun-net', type: 'tuning', dataDir, mtu: 1300, prevResult };
    for (const id of ['keep', 'gone']) {
      const r = execPlugin(join(OUR_BIN, 'tuning'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${s.prefix}${id}`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0' }, conf);
      expect(r.status, r.stdout).toBe(0);
    }
    const gc = execPlugin(join(OUR_BIN, 'tuning'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { ...conf, prevResult: undefined, 'cni.dev/valid-attachments': [{ containerID: `${s.prefix}keep`, ifname: 'eth0' }] });
    expect(gc.status, gc.stdout).toBe(0);
    expect(readdirSync(dataDir)).toEqual([`${s.prefix}keep_eth0.json`]);
    expect(existsSync(dataDir)).toBe(true);
  });
});
