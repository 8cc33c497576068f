import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cnitool, execPlugin, writeConflist } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

describe('loopback', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  const loUp = (ns: string) => ipJson<any[]>(['link', 'show', 'lo'], ns)[0].flags.includes('UP');

  for (const cniVersion of VERSIONS) {
    it(`ADD brings lo up and DEL brings it down at ${cniVersion} (direct exec)`, () => {
      const ns = s.netns();
      require_down(ns.name);
      const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: ns.path, CNI_IFNAME: 'lo', CNI_PATH: OUR_BIN };
      const conf = { cniVersion, name: 'lo-net', type: 'loopback' };
      const add = execPlugin(join(OUR_BIN, 'loopback'), { ...env, CNI_COMMAND: 'ADD' }, conf);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json.cniVersion).toBe(cniVersion);
      expect(add.json.interfaces).toEqual([{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: ns.path }]);
      expect(add.json.ips.map((ip: any) => ip.address)).toEqual(['127.0.0.1/8', '::1/128']);
      expect(loUp(ns.name)).toBe(true);
      const del = execPlugin(join(OUR_BIN, 'loopback'), { ...env, CNI_COMMAND: 'DEL' }, conf);
      expect(del.status).toBe(0);
      expect(del.stdout).toBe('');
      expect(loUp(ns.name)).toBe(false);
    });
  }

  function require_down(ns: string) {
    ipJson(['link', 'set', 'lo', 'down'], ns);
  }

  it('works through cnitool (libcni) at 0.3.1 with CNI_IFNAME=lo, as containerd CRI calls it', () => {
    const ns = s.netns();
    require_down(ns.name);
    const confDir = s.tmpdir();
    writeConflist(confDir, { cniVersion: '0.3.1', name: 'cni-loopback', plugins: [{ type: 'loopback' }] });
    const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), ifname: 'lo' };
    const add = cnitool('add', 'cni-loopback', ns.path, e);
    expect(add.status, add.stderr).toBe(0);
    expect(add.json.ips).toEqual([
      { version: '4', interface: 0, address: '127.0.0.1/8' },
      { version: '6', interface: 0, address: '::1/128' },
    ]);
    expect(loUp(ns.name)).toBe(true);
    expect(cnitool('check', 'cni-loopback', ns.path, e).status).toBe(1); // CHECK needs 0.4.0
    expect(cnitool('del', 'cni-loopback', ns.path, e).status).toBe(0);
    expect(loUp(ns.name)).toBe(false);
  });

  it('matches the reference plugin at 1.0.0 (result and exit code)', () => {
    const conf = { cniVersion: '1.0.0', name: 'lo-net', type: 'loopback' };
    const run = (bin: string) => {
      const ns = s.netns();
      const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: ns.path, CNI_IFNAME: 'lo', CNI_PATH: bin };
      const r = execPlugin(join(bin, 'loopback'), { ...env, CNI_COMMAND: 'ADD' }, conf);
      return { status: r.status, json: { ...r.json, interfaces: r.json.interfaces.map((i: any) => ({ ...i, sandbox: 'NS' })) } };
    };
    expect(run(OUR_BIN)).toEqual(run(REF_BIN));
  });
});
