import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { findTaggedRules, sweepLines } from '../../cli/tagged-rules.ts';
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

/** A bridge + host-local + portmap network (any plugins: CNI_PATH picks them), with names and a subnet of its own. */
function bridgeNetwork(s: Scope, { cniVersion = '1.0.0', suffix = 'net', dataDir = s.tmpdir() } = {}) {
  const bridge = s.link(s.name('br'));
  const net = `${s.prefix}${suffix}`;
  const subnet = `10.${randomInt(100, 250)}.${randomInt(0, 255)}`;
  const confDir = s.tmpdir();
  writeConflist(confDir, {
    cniVersion,
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

/**
 * One attachment's nat rules (masquerade and portmap, found by their tags), in the shape that must
 * match between two attachments: its ID, address, host port and chain hashes replaced.
 */
function attachmentRules(net: string, id: string, ip: string, hostPort: number): string[] {
  const saved = parseIptablesSave(natRules());
  const [group] = findTaggedRules(saved, (n, c) => n === net && c === id);
  if (!group) return [];
  const own = saved.rules.filter((r) => group.chains.includes(r.chain));
  return [...group.rules, ...own]
    .map((r) => `-A ${r.chain} ${r.spec}`)
    .map((l) => l.replaceAll(id, 'ID').replaceAll(`${ip}:`, 'IP:').replaceAll(`${ip}/32`, 'IP/32').replace(new RegExp(`\\b${hostPort}\\b`, 'g'), 'PORT').replace(/CNI-(DN-)?[0-9a-f]{21,24}/g, 'CNI-$1HASH'))
    .sort();
}

describe('tscni add/check/del/gc with the reference plugins, against cnitool', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('ADD gives the same result, kernel state and cache as cnitool; each tool DELs what the other added', () => {
    const n = bridgeNetwork(s);
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
    const n = bridgeNetwork(s);
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
    const n = bridgeNetwork(s);
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

  it('runs our bridge + host-local + portmap like cnitool does (1.0.0): same result, namespace state, rules and cache; each DELs what the other added', () => {
    const n = bridgeNetwork(s);
    const [nsA, nsB] = [s.netns(), s.netns()];
    const [idA, idB] = [s.name('c'), s.name('c')];
    const [capsA, capsB] = [n.ports(), n.ports()];
    const [cacheA, cacheB] = [s.tmpdir(), s.tmpdir()];
    const viaCnitool = (verb: 'add' | 'check' | 'del', ns = nsA, cacheDir = cacheA, id = idA, capArgs = capsA) => cnitool(verb, n.net, ns.path, { confDir: n.confDir, pluginDir: OUR_BIN, cacheDir, containerId: id, capArgs });
    const env = { NETCONFPATH: n.confDir, CNI_PATH: OUR_BIN };

    const a = viaCnitool('add');
    expect(a.status, a.stderr).toBe(0);
    const b = tscni(['add', n.net, nsB.path, '--json', '--cap-args', JSON.stringify(capsB)], { ...env, CNI_CACHEDIR: cacheB, CNI_CONTAINERID: idB });
    expect(b.status, b.stderr).toBe(0);
    expect(b.json.cniVersion).toBe('1.0.0');
    expect(normalize(b.json, n.subnet)).toEqual(normalize(a.json, n.subnet));
    expect(kernelView(nsB.name, n.subnet)).toEqual(kernelView(nsA.name, n.subnet));
    const ipA = a.json.ips[0].address.split('/')[0];
    const ipB = b.json.ips[0].address.split('/')[0];
    expect(ipB).not.toBe(ipA);
    expect(pings(nsA.name, ipB)).toBe(true);
    expect(reservations(n.dataDir, n.net)).toEqual([ipA, ipB].sort());

    const rulesA = attachmentRules(n.net, idA, ipA, capsA.portMappings[0]!.hostPort);
    expect(rulesA).toContain(`-A POSTROUTING -s IP/32 -m comment --comment "name: \\"${n.net}\\" id: \\"ID\\"" -j CNI-HASH`);
    expect(rulesA).toContain('-A CNI-DN-HASH -p tcp -m tcp --dport PORT -j DNAT --to-destination IP:80');
    expect(attachmentRules(n.net, idB, ipB, capsB.portMappings[0]!.hostPort)).toEqual(rulesA);

    const [fileA, fileB] = [join(cacheA, 'results', `${n.net}-${idA}-eth0`), join(cacheB, 'results', `${n.net}-${idB}-eth0`)];
    const [cachedA, cachedB] = [JSON.parse(readFileSync(fileA, 'utf8')), JSON.parse(readFileSync(fileB, 'utf8'))];
    expect(cachedB.config).toBe(cachedA.config);
    expect(normalize(cachedB.result, n.subnet)).toEqual(normalize(cachedA.result, n.subnet));

    const checkA = viaCnitool('check');
    expect(checkA.status, checkA.stderr).toBe(0);
    const checkB = tscni(['check', n.net, nsB.path], { ...env, CNI_CACHEDIR: cacheB, CNI_CONTAINERID: idB });
    expect(checkB.status, checkB.stderr).toBe(0);

    // swap tools: each DELs the other's attachment from the other's cache
    const delA = tscni(['del', n.net, nsA.path], { ...env, CNI_CACHEDIR: cacheA, CNI_CONTAINERID: idA });
    expect(delA.status, delA.stderr).toBe(0);
    const delB = viaCnitool('del', nsB, cacheB, idB, capsB);
    expect(delB.status, delB.stderr).toBe(0);
    expect(cacheFiles(cacheA)).toEqual([]);
    expect(cacheFiles(cacheB)).toEqual([]);
    expect(reservations(n.dataDir, n.net)).toEqual([]);
    expect(natRules()).not.toContain(`"${n.net}\\"`);
    for (const ns of [nsA, nsB]) expect(ipJson<any[]>(['link', 'show'], ns.name).map((l) => l.ifname)).toEqual(['lo']);
    expect(ipJson<any[]>(['link', 'show', 'master', n.bridge])).toEqual([]);
  });

  it('GC (1.1.0) after killing namespaces frees exactly the stale attachments, cached or not, and nothing of the live ones or of another network', () => {
    const dataDir = s.tmpdir();
    const n = bridgeNetwork(s, { cniVersion: '1.1.0', dataDir });
    const other = bridgeNetwork(s, { cniVersion: '1.1.0', dataDir, suffix: 'oth' });
    const cacheDir = s.tmpdir();
    const env = (net: typeof n) => ({ NETCONFPATH: net.confDir, CNI_PATH: OUR_BIN, CNI_CACHEDIR: cacheDir });
    const attach = (net: typeof n) => {
      const ns = s.netns();
      const id = s.name('c');
      const caps = net.ports();
      const add = tscni(['add', net.net, ns.path, '--json', '--cap-args', JSON.stringify(caps)], { ...env(net), CNI_CONTAINERID: id });
      expect(add.status, add.stderr).toBe(0);
      expect(add.json.cniVersion).toBe('1.1.0');
      const ip = add.json.ips[0].address.split('/')[0] as string;
      return { ns, id, ip, hostPort: caps.portMappings[0]!.hostPort };
    };
    const status = tscni(['status', n.net, '--json'], env(n));
    expect(status.status, status.stderr).toBe(0);
    expect(status.json).toEqual({ network: n.net, ok: true, checked: true });

    const [live1, live2, dead, lost] = [attach(n), attach(n), attach(n), attach(n)];
    const elsewhere = attach(other);
    const rulesOf = (net: typeof n, c: typeof live1) => attachmentRules(net.net, c.id, c.ip, c.hostPort);
    const before = { live1: rulesOf(n, live1), live2: rulesOf(n, live2), elsewhere: rulesOf(other, elsewhere) };
    for (const r of Object.values(before)) expect(r.length).toBeGreaterThan(0);
    // both die; the runtime also lost its record of `lost` (a crash): only the plugins' GC can free it
    for (const c of [dead, lost, elsewhere]) sh(['ip', 'netns', 'del', c.ns.name]);
    rmSync(join(cacheDir, 'results', `${n.net}-${lost.id}-eth0`));

    const gc = tscni(['gc', n.net, '--json', '--no-sweep'], env(n));
    expect(gc.status, gc.stderr).toBe(0);
    expect(gc.json.pluginsCalled).toBe(true);
    expect(gc.json.deleted.map((d: any) => d.containerID)).toEqual([dead.id]);
    expect(gc.json.valid.map((v: any) => v.containerID).sort()).toEqual([live1.id, live2.id].sort());

    expect(reservations(dataDir, n.net)).toEqual([live1.ip, live2.ip].sort());
    expect(cacheFiles(cacheDir).sort()).toEqual([`${n.net}-${live1.id}-eth0`, `${n.net}-${live2.id}-eth0`, `${other.net}-${elsewhere.id}-eth0`].sort());
    const rules = natRules();
    for (const c of [dead, lost]) {
      expect(rulesOf(n, c)).toEqual([]);
      expect(rules).not.toContain(`${c.ip}:80`);
      expect(rules).not.toContain(`--dport ${c.hostPort} `);
    }
    // nothing else: the live attachments and the other network's (dead too, but not this network's GC) are intact
    expect({ live1: rulesOf(n, live1), live2: rulesOf(n, live2), elsewhere: rulesOf(other, elsewhere) }).toEqual(before);
    expect(reservations(dataDir, other.net)).toEqual([elsewhere.ip]);
    expect(ipJson<any[]>(['link', 'show', 'master', n.bridge])).toHaveLength(2);
    expect(pings(live1.ns.name, live2.ip)).toBe(true);
    expect(tscni(['check', n.net, live1.ns.path], { ...env(n), CNI_CONTAINERID: live1.id }).status).toBe(0);

    // the other network's GC frees its own dead attachment
    const gcOther = tscni(['gc', other.net, '--json'], env(other));
    expect(gcOther.status, gcOther.stderr).toBe(0);
    expect(gcOther.json.deleted.map((d: any) => d.containerID)).toEqual([elsewhere.id]);
    expect(reservations(dataDir, other.net)).toEqual([]);
    expect(rulesOf(other, elsewhere)).toEqual([]);
    expect({ live1: rulesOf(n, live1), live2: rulesOf(n, live2) }).toEqual({ live1: before.live1, live2: before.live2 });

    for (const c of [live1, live2]) expect(tscni(['del', n.net, c.ns.path], { ...env(n), CNI_CONTAINERID: c.id }).status).toBe(0);
    expect(reservations(dataDir, n.net)).toEqual([]);
    expect(cacheFiles(cacheDir)).toEqual([]);
    const after = natRules();
    for (const net of [n.net, other.net]) expect(after).not.toContain(`"${net}\\"`);
  });
});
