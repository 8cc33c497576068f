import { afterEach, describe, expect, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh } from '../support/scope.ts';
import { PLUGIN_VERSIONS } from '../support/versions.ts';


/** Rule-level behaviour by direct exec, with prevResults naming addresses no other test uses. */
describe('portmap rules', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  function addrs() {
    const a = randomInt(1, 250);
    const b = randomInt(1, 250);
    return { v4: `10.${a}.${b}.2`, v6: `fd00:${a}:${b}::2`, port: randomInt(20000, 60000) };
  }
  const prev = (cniVersion: string, x: { v4: string; v6: string }) => {
    const legacy = cniVersion.startsWith('0.');
    const ip = (address: string, v: string) => ({ ...(legacy ? { version: v } : {}), address, interface: 1 });
    return { cniVersion, interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/run/netns/x' }], ips: [ip(`${x.v4}/24`, '4'), ip(`${x.v6}/64`, '6')] };
  };
  const rules = (needles: string[]) => {
    let nft = '';
    try {
      nft = sh(['nft', 'list', 'table', 'inet', 'tscni_portmap']);
    } catch {
      // no table yet
    }
    return (sh(['iptables-save', '-t', 'nat']) + sh(['ip6tables-save', '-t', 'nat']) + nft).split('\n').filter((l) => needles.some((n) => l.includes(n)));
  };
  const run = (command: string, id: string, conf: object, extra: object = {}) =>
    execPlugin(join(OUR_BIN, 'portmap'), { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN, ...extra }, conf);

  for (const cniVersion of PLUGIN_VERSIONS) {
    for (const backend of ['iptables', 'nftables']) {
      it(`ADD passes prevResult through; DEL without prevResult or netns removes every rule (${backend}, ${cniVersion})`, () => {
        const x = addrs();
        const id = s.name('c');
        const needles = [x.v4, x.v6, ` ${x.port} `, `${x.port},`, `dport ${x.port}`];
        const before = rules(needles);
        const conf = { cniVersion, name: 'pm-rules', type: 'portmap', backend, snat: false, runtimeConfig: { portMappings: [{ hostPort: x.port, containerPort: 80, protocol: 'tcp' }, { hostPort: x.port, containerPort: 53, protocol: 'udp' }] }, prevResult: prev(cniVersion, x) };
        s.defer(() => run('DEL', id, conf));
        const add = run('ADD', id, conf);
        expect(add.status, add.stdout + add.stderr).toBe(0);
        expect(add.json.cniVersion).toBe(cniVersion);
        expect(add.json.ips.map((i: any) => i.address)).toEqual([`${x.v4}/24`, `${x.v6}/64`]);
        expect(rules(needles).length).toBeGreaterThan(before.length);
        if (cniVersion !== '0.3.1') expect(run('CHECK', id, conf).status).toBe(0);
        const del = run('DEL', id, { ...conf, prevResult: undefined }, { CNI_NETNS: '' });
        expect(del.status, del.stdout).toBe(0);
        expect(rules(needles)).toEqual(before);
        if (cniVersion !== '0.3.1') expect(run('CHECK', id, conf).status).toBe(1);
      });
    }
  }

  it('touches no rules at all without runtimeConfig.portMappings', () => {
    const x = addrs();
    const save = () => sh(['iptables-save', '-t', 'nat']).split('\n').filter((l) => !l.startsWith('#') && !l.startsWith(':')).filter((l) => l.includes('HOSTPORT') || l.includes(x.v4));
    const before = save();
    for (const runtimeConfig of [undefined, {}, { portMappings: [] }]) {
      const add = run('ADD', s.name('c'), { cniVersion: '1.0.0', name: 'pm-rules', type: 'portmap', runtimeConfig, prevResult: prev('1.0.0', x) });
      expect(add.status, add.stdout).toBe(0);
      expect(add.json.ips[0].address).toBe(`${x.v4}/24`);
    }
    expect(save()).toEqual(before);
    expect(run('ADD', s.name('c'), { cniVersion: '1.0.0', name: 'pm-rules', type: 'portmap' }).json.code).toBe(7); // prevResult required
  });

  for (const backend of ['iptables', 'nftables']) {
    it(`refuses a host port another container has, leaving nothing (${backend})`, () => {
      const [a, b] = [addrs(), addrs()];
      const port = a.port;
      const conf = (x: typeof a) => ({ cniVersion: '1.0.0', name: 'pm-rules', type: 'portmap', backend, snat: false, runtimeConfig: { portMappings: [{ HostPort: port + 1, ContainerPort: 81 }, { HostPort: port, ContainerPort: 80, Protocol: 'tcp' }] }, prevResult: prev('1.0.0', x) });
      const [ida, idb] = [s.name('c'), s.name('c')];
      s.defer(() => run('DEL', ida, conf(a)));
      s.defer(() => run('DEL', idb, conf(b)));
      expect(run('ADD', ida, conf(a)).status).toBe(0);
      const held = rules([a.v4, a.v6]);
      const second = run('ADD', idb, conf(b));
      expect(second.status).toBe(1);
      expect(second.json.code).toBe(7);
      expect(second.json.msg).toMatch(new RegExp(`host port ${port + 1}/tcp is already mapped`));
      expect(rules([b.v4, b.v6])).toEqual([]);
      expect(rules([a.v4, a.v6])).toEqual(held);
      // The same port on every address conflicts with one address of it; another protocol does not.
      expect(run('ADD', idb, { ...conf(b), runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, hostIP: '127.0.0.7' }] } }).json.msg).toMatch(/already mapped/);
      const elsewhere = run('ADD', idb, { ...conf(b), runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, protocol: 'udp' }] } });
      expect(elsewhere.status, elsewhere.stdout).toBe(0);
    });
  }

  it('GC removes forwarding of attachments not in the valid list, and their marks (both backends)', () => {
    for (const backend of ['iptables', 'nftables']) {
      const [a, b] = [addrs(), addrs()];
      const net = `pm-${s.prefix}-${backend}`;
      const dataDir = s.tmpdir();
      const conf = (x: typeof a) => ({ cniVersion: '1.1.0', name: net, type: 'portmap', backend, snat: false, dataDir, runtimeConfig: { portMappings: [{ hostPort: x.port, containerPort: 80 }] }, prevResult: prev('1.1.0', x) });
      expect(run('ADD', `${s.prefix}keep`, conf(a)).status).toBe(0);
      expect(run('ADD', `${s.prefix}gone`, conf(b)).status).toBe(0);
      expect(readdirSync(dataDir)).toHaveLength(2);
      const gc = (valid: object[]) => execPlugin(join(OUR_BIN, 'portmap'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: net, type: 'portmap', backend, dataDir, 'cni.dev/valid-attachments': valid });
      s.defer(() => gc([]));
      expect(gc([{ containerID: `${s.prefix}keep`, ifname: 'eth0' }]).status).toBe(0);
      expect(rules([b.v4, b.v6])).toEqual([]);
      expect(rules([a.v4, a.v6]).length).toBeGreaterThan(0);
      expect(readdirSync(dataDir)).toHaveLength(1);
      expect(gc([]).status).toBe(0);
      expect(rules([a.v4, a.v6])).toEqual([]);
      expect(readdirSync(dataDir)).toEqual([]);
    }
  });

  it('a DEL listing no mappings removes what the ADD forwarded (marked in dataDir), and reads no rules for an attachment never forwarded', () => {
    const x = addrs();
    const dataDir = s.tmpdir();
    const id = s.name('c');
    const conf = { cniVersion: '1.0.0', name: 'pm-rules', type: 'portmap', snat: false, dataDir, runtimeConfig: { portMappings: [{ hostPort: x.port, containerPort: 80 }] }, prevResult: prev('1.0.0', x) };
    s.defer(() => run('DEL', id, conf));
    const before = rules([x.v4, x.v6]);
    expect(run('ADD', id, conf).status).toBe(0);
    const marks = readdirSync(dataDir);
    expect(marks).toHaveLength(1);
    expect(statSync(join(dataDir, marks[0]!)).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);

    // netfilter readers that fail: a DEL that consults them fails too
    const bin = s.tmpdir();
    for (const tool of ['iptables-save', 'ip6tables-save', 'nft']) {
      writeFileSync(join(bin, tool), '#!/bin/sh\necho "not to be read" >&2\nexit 1\n');
      chmodSync(join(bin, tool), 0o755);
    }
    const failingReaders = { PATH: `${bin}:${process.env.PATH}` };
    const unlisted = { ...conf, runtimeConfig: undefined };
    expect(run('DEL', id, unlisted, failingReaders).status).toBe(1); // marked: it must look
    expect(run('DEL', s.name('never'), unlisted, failingReaders).status).toBe(0); // unmarked: nothing to look for

    const del = run('DEL', id, unlisted);
    expect(del.status, del.stdout).toBe(0);
    expect(rules([x.v4, x.v6])).toEqual(before);
    expect(readdirSync(dataDir)).toEqual([]);
    for (const command of ['ADD', 'DEL']) expect(run(command, id, { ...conf, dataDir: `${dataDir}/../x` }).json?.code, command).toBe(7);
  });
});
