import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { findTaggedRules, sweepLines } from '../../lib/cli/tagged-rules.ts';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import { cnitool, writeConflist, type PluginRun } from '../support/cni.ts';
import { ipJson, pings } from '../support/kernel.ts';
import { OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

const TSCNI = join(OUR_BIN, 'tscni');

function tscni(args: string[], env: Record<string, string | undefined>): PluginRun {
  const base = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  const r = spawnSync(TSCNI, args, { env: { ...base, ...env } as NodeJS.ProcessEnv, encoding: 'utf8' });
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json };
}

const natRules = () => sh(['iptables-save', '-t', 'nat']);

describe('tscni add/check/del/gc with the reference plugins, against cnitool', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** A bridge + host-local + portmap network of the reference plugins, with names and a subnet of its own. */
  function referenceNetwork() {
    const bridge = s.link(s.name('br'));
    const net = `${s.prefix}net`;
    const subnet = `10.${randomInt(100, 250)}.${randomInt(0, 255)}`;
    const confDir = s.tmpdir();
    const dataDir = s.tmpdir();
    writeConflist(confDir, {
      cniVersion: '1.0.0',
      name: net,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: `${subnet}.0/24` }]], dataDir, routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
    // whatever a failed test leaves in nat, tagged with our prefix, goes
    s.defer(() => {
      const groups = findTaggedRules(parseIptablesSave(natRules()), (n) => n === net);
      const lines = sweepLines(groups);
      if (lines.length) tryRun(['iptables-restore', '-w', '--noflush'], `*nat\n${lines.join('\n')}\nCOMMIT\n`);
    });
    const ports = () => ({ portMappings: [{ hostPort: randomInt(20000, 40000), containerPort: 80, protocol: 'tcp' }] });
    return { net, bridge, subnet, confDir, dataDir, ports };
  }

  /** What must match between two attachments: everything but MACs, veth names, sandbox and the host part. */
  function normalize(result: any, subnet: string) {
    const text = JSON.stringify(result)
      .replace(/"mac":"[0-9a-f:]+"/g, '"mac":"MAC"')
      .replace(/"veth[0-9a-f]+"/g, '"VETH"')
      .replace(/"sandbox":"[^"]+"/g, '"sandbox":"NS"')
      .replace(new RegExp(`${subnet.replace(/\./g, '\\.')}\\.(?!1[/"])\\d+`, 'g'), `${subnet}.X`);
    return JSON.parse(text);
  }

  function kernelView(ns: string, subnet: string) {
    const addrs = ipJson<any[]>(['addr', 'show', 'eth0'], ns).map((l) => ({ mtu: l.mtu, operstate: l.operstate, addrs: l.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => a.prefixlen) }));
    const routes = ipJson<any[]>(['route', 'show'], ns).map((r) => ({ dst: r.dst.replace(/\.\d+$/, '.N'), gateway: r.gateway, dev: r.dev }));
    return normalize({ addrs, routes }, subnet);
  }

  const cacheFiles = (dir: string) => {
    try {
      return readdirSync(join(dir, 'results'));
    } catch {
      return [];
    }
  };
  const reservations = (dataDir: string, net: string) => readdirSync(join(dataDir, net)).filter((f) => /^\d/.test(f)).sort();

  it('ADD gives the same result, kernel state and cache as cnitool; each tool DELs what the other added', () => {
    const n = referenceNetwork();
    const [nsA, nsB] = [s.netns(), s.netns()];
    const [idA, idB] = [s.name('c'), s.name('c')];
    const [capsA, capsB] = [n.ports(), n.ports()];
    const [cacheA, cacheB] = [s.tmpdir(), s.tmpdir()];

    const viaCnitool = cnitool('add', n.net, nsA.path, { confDir: n.confDir, pluginDir: REF_BIN, cacheDir: cacheA, containerId: idA, capArgs: capsA });
    expect(viaCnitool.status, viaCnitool.stderr).toBe(0);
    const env = { NETCONFPATH: n.confDir, CNI_PATH: REF_BIN };
    const viaTscni = tscni(['add', n.net, nsB.path, '--json', '--cap-args', JSON.stringify(capsB)], { ...env, CNI_CACHEDIR: cacheB, CNI_CONTAINERID: idB });
    expect(viaTscni.status, viaTscni.stderr).toBe(0);

    expect(normalize(viaTscni.json, n.subnet)).toEqual(normalize(viaCnitool.json, n.subnet));
    expect(kernelView(nsB.name, n.subnet)).toEqual(kernelView(nsA.name, n.subnet));
    const ipA = viaCnitool.json.ips[0].address.split('/')[0];
    const ipB = viaTscni.json.ips[0].address.split('/')[0];
    expect(pings(nsA.name, ipB)).toBe(true);
    const rules = natRules();
    for (const [id, ip, caps] of [[idA, ipA, capsA], [idB, ipB, capsB]] as const) {
      expect(rules).toContain(`-A POSTROUTING -s ${ip}/32 -m comment --comment "name: \\"${n.net}\\" id: \\"${id}\\""`);
      expect(rules).toContain(`--dports ${caps.portMappings[0]!.hostPort} -j CNI-DN-`);
      expect(rules).toContain(`--dport ${caps.portMappings[0]!.hostPort} -j DNAT --to-destination ${ip}:80`);
    }

    // the cache: libcni's file, field for field, plus the netns libcni >= 1.2 records
    const fileA = join(cacheA, 'results', `${n.net}-${idA}-eth0`);
    const fileB = join(cacheB, 'results', `${n.net}-${idB}-eth0`);
    const [a, b] = [JSON.parse(readFileSync(fileA, 'utf8')), JSON.parse(readFileSync(fileB, 'utf8'))];
    expect(Object.keys(b)).toEqual(['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'capabilityArgs', 'result']);
    expect(Object.keys(a)).toEqual(Object.keys(b).filter((k) => k !== 'netns'));
    expect(b.config).toBe(a.config);
    expect(b.netns).toBe(nsB.path);
    expect(normalize(b.result, n.subnet)).toEqual(normalize(a.result, n.subnet));

    // CHECK: the same verdict from both (reference portmap 1.1.1 fails CHECK without ip6tables chains)
    const checkA = cnitool('check', n.net, nsA.path, { confDir: n.confDir, pluginDir: REF_BIN, cacheDir: cacheA, containerId: idA, capArgs: capsA });
    const checkB = tscni(['check', n.net, nsB.path], { ...env, CNI_CACHEDIR: cacheB, CNI_CONTAINERID: idB });
    expect(checkB.status).toBe(checkA.status);
    expect(checkB.stderr.replace(/CNI-DN-\w+/g, 'CHAIN')).toContain(checkA.stderr.trim().split('\n')[0]!.replace(/CNI-DN-\w+/g, 'CHAIN'));

    // swap tools: tscni DELs cnitool's attachment from cnitool's cache, and the other way round
    expect(tscni(['del', n.net, nsA.path], { ...env, CNI_CACHEDIR: cacheA, CNI_CONTAINERID: idA }).status).toBe(0);
    expect(cnitool('del', n.net, nsB.path, { confDir: n.confDir, pluginDir: REF_BIN, cacheDir: cacheB, containerId: idB, capArgs: capsB }).status).toBe(0);
    expect(cacheFiles(cacheA)).toEqual([]);
    expect(cacheFiles(cacheB)).toEqual([]);
    expect(reservations(n.dataDir, n.net)).toEqual([]);
    expect(natRules()).not.toContain(`"${n.net}\\"`);
    expect(ipJson<any[]>(['link', 'show', 'master', n.bridge])).toEqual([]);
  });

  it('GC after killing containers\' namespaces frees exactly their addresses, masquerade and portmap rules', () => {
    const n = referenceNetwork();
    const cacheDir = s.tmpdir();
    const env = { NETCONFPATH: n.confDir, CNI_PATH: REF_BIN, CNI_CACHEDIR: cacheDir };
    const containers = [0, 1, 2, 3].map(() => {
      const ns = s.netns();
      const id = s.name('c');
      const caps = n.ports();
      const add = tscni(['add', n.net, ns.path, '--json', '--cap-args', JSON.stringify(caps)], { ...env, CNI_CONTAINERID: id });
      expect(add.status, add.stderr).toBe(0);
      return { ns, id, caps, ip: add.json.ips[0].address.split('/')[0] as string };
    });
    const [live1, live2, dead1, dead2] = containers as [typeof containers[0], typeof containers[0], typeof containers[0], typeof containers[0]];
    for (const dead of [dead1, dead2]) sh(['ip', 'netns', 'del', dead.ns.name]);

    const leaks = tscni(['ipam', 'leaks', '--json', '--data-dir', n.dataDir], env);
    expect(leaks.status).toBe(1);
    expect(leaks.json.map((l: any) => l.containerID).sort()).toEqual([dead1.id, dead2.id].sort());

    const gc = tscni(['gc', n.net, '--json'], env);
    expect(gc.status, gc.stderr).toBe(0);
    expect(gc.json.deleted.map((d: any) => d.containerID).sort()).toEqual([dead1.id, dead2.id].sort());
    expect(gc.json.valid.map((v: any) => v.containerID).sort()).toEqual([live1.id, live2.id].sort());

    expect(cacheFiles(cacheDir).sort()).toEqual([live1.id, live2.id].map((id) => `${n.net}-${id}-eth0`).sort());
    expect(reservations(n.dataDir, n.net)).toEqual([live1.ip, live2.ip].sort());
    const rules = natRules();
    for (const c of [dead1, dead2]) {
      expect(rules).not.toContain(`id: \\"${c.id}\\"`);
      expect(rules).not.toContain(`--to-destination ${c.ip}:80`);
    }
    for (const c of [live1, live2]) {
      expect(rules).toContain(`-A POSTROUTING -s ${c.ip}/32 -m comment --comment "name: \\"${n.net}\\" id: \\"${c.id}\\""`);
      expect(rules).toContain(`--dport ${c.caps.portMappings[0]!.hostPort} -j DNAT --to-destination ${c.ip}:80`);
    }
    expect(pings(live1.ns.name, live2.ip)).toBe(true);
    expect(tscni(['ipam', 'leaks', '--data-dir', n.dataDir], env).status).toBe(0);

    const ls = tscni(['ipam', 'ls', n.net, '--json', '--data-dir', n.dataDir], env);
    expect(ls.json.map((r: any) => [r.address, r.containerID, r.ifname])).toEqual([live1, live2].map((c) => [c.ip, c.id, 'eth0']).sort());

    for (const c of [live1, live2]) expect(tscni(['del', n.net, c.ns.path], { ...env, CNI_CONTAINERID: c.id }).status).toBe(0);
    expect(natRules()).not.toContain(`"${n.net}\\"`);
  });

  it('doctor finds the masquerade chain the reference bridge leaves when DEL comes after the netns is gone, and its fix works', () => {
    const n = referenceNetwork();
    const cacheDir = s.tmpdir();
    const env = { NETCONFPATH: n.confDir, CNI_PATH: REF_BIN, CNI_CACHEDIR: cacheDir };
    const ns = s.netns();
    const id = s.name('c');
    expect(tscni(['add', n.net, ns.path], { ...env, CNI_CONTAINERID: id }).status).toBe(0);
    sh(['ip', 'netns', 'del', ns.name]);
    // plain DEL (no GC sweep): the reference bridge 1.1.1 returns before removing masquerade
    expect(tscni(['del', n.net, ns.path], { ...env, CNI_CONTAINERID: id }).status).toBe(0);
    expect(natRules()).toContain(`id: \\"${id}\\"`);
    const doctor = tscni(['doctor', '--json', '--cni-path', REF_BIN, '--data-dir', n.dataDir], env);
    expect(doctor.status).toBe(1);
    const finding = doctor.json.findings.find((f: any) => f.check === 'rules' && f.message.includes(id));
    expect(finding.fix).toMatch(/^iptables -t nat -D POSTROUTING /);
    expect(tryRun(['sh', '-c', finding.fix]).status).toBe(0);
    expect(natRules()).not.toContain(`id: \\"${id}\\"`);
  });
});

describe('tscni with our plugins', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('runs our loopback like cnitool does (result, lo up, DEL brings it down)', () => {
    const confDir = s.tmpdir();
    const net = `${s.prefix}lo`;
    writeConflist(confDir, { cniVersion: '1.0.0', name: net, plugins: [{ type: 'loopback' }] });
    const [nsA, nsB] = [s.netns(), s.netns()];
    for (const ns of [nsA, nsB]) sh(['ip', '-n', ns.name, 'link', 'set', 'lo', 'down']);
    const a = cnitool('add', net, nsA.path, { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), ifname: 'lo' });
    const cacheDir = s.tmpdir();
    const env = { NETCONFPATH: confDir, CNI_PATH: OUR_BIN, CNI_CACHEDIR: cacheDir, CNI_IFNAME: 'lo' };
    const b = tscni(['add', net, nsB.path, '--json'], env);
    expect(b.status, b.stderr).toBe(0);
    const strip = (r: any) => ({ ...r, interfaces: r.interfaces.map((i: any) => ({ ...i, sandbox: 'NS' })) });
    expect(strip(b.json)).toEqual(strip(a.json));
    const up = (ns: string) => ipJson<any[]>(['link', 'show', 'lo'], ns)[0].flags.includes('UP');
    expect(up(nsB.name)).toBe(true);
    expect(tscni(['check', net, nsB.path], env).status).toBe(0);
    expect(tscni(['del', net, nsB.path], env).status).toBe(0);
    expect(up(nsB.name)).toBe(false);
    expect(cacheFiles(cacheDir)).toEqual([]);
  });

  const cacheFiles = (dir: string) => {
    try {
      return readdirSync(join(dir, 'results'));
    } catch {
      return [];
    }
  };
});
