import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cnitool, execPlugin, writeConflist } from '../support/cni.ts';
import { EtcdServer } from '../support/etcd-server.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { writePeersFile } from '../support/vxlan-cluster.ts';
import { DEVICE, loneNode, peer } from '../support/vxlan-node.ts';

/**
 * Hostile peers and stores, through the built binary: what another etcd writer, a planted state
 * file or a runtime's retry can make a plugin do. Each case checks that nothing it did not own moved.
 */

const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' });

/** Every file under `dir`, relative, sorted (a store, a state dir). */
function filesUnder(dir: string, rel = ''): string[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, rel), { withFileTypes: true }).map((d) => (d.isDirectory() ? `${d.name}/` : d.name));
  } catch {
    return [];
  }
  return names.flatMap((n) => (n.endsWith('/') ? [join(rel, n), ...filesUnder(dir, join(rel, n))] : [join(rel, n)])).sort();
}

describe('GC without a list of valid attachments', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('is code 7 from every plugin and leaves every rule, reservation and state file in place', () => {
    const a = 100 + Math.floor(Math.random() * 100);
    const b = Math.floor(Math.random() * 250);
    const port = 20000 + Math.floor(Math.random() * 40000);
    const net = `gc-${s.prefix}`;
    const br = s.link(s.name('b'));
    const confDir = s.tmpdir();
    const ipamDir = s.tmpdir();
    const tuningDir = s.tmpdir();
    const portmapDir = s.tmpdir();
    const plugins = [
      { type: 'bridge', bridge: br, isGateway: true, ipMasq: true, ipMasqBackend: 'iptables', ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `10.${a}.${b}.0/24` }]] } },
      { type: 'portmap', capabilities: { portMappings: true }, dataDir: portmapDir },
      { type: 'firewall', backend: 'iptables' },
      { type: 'tuning', dataDir: tuningDir, sysctl: { 'net.core.somaxconn': '777' } },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ];
    writeConflist(confDir, { cniVersion: '1.0.0', name: net, plugins });
    // two live containers, as in the measured case: GC must not take either one's rules
    const containers = [0, 1].map((i) => {
      const c = s.netns();
      const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), containerId: s.name('c'), capArgs: { portMappings: [{ hostPort: port + i, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1e8, ingressBurst: 8e5, egressRate: 1e8, egressBurst: 8e5 } } };
      s.defer(() => cnitool('del', net, c.path, e));
      const add = cnitool('add', net, c.path, e);
      expect(add.status, add.stderr).toBe(0);
      const hostLinks = (add.json.interfaces as { name: string; sandbox?: string }[]).filter((l) => !l.sandbox).map((l) => l.name);
      return { ...e, ip: add.json.ips[0].address.split('/')[0] as string, hostLinks };
    });
    const ours = (l: string) => l.includes(`10.${a}.${b}.`) || l.includes(net) || containers.some((c) => l.includes(c.containerId));
    const snapshot = () => ({
      iptables: (sh(['iptables-save']) + sh(['ip6tables-save'])).split('\n').filter(ours).sort(),
      nft: sh(['nft', 'list', 'ruleset']).split('\n').filter(ours).sort(),
      links: containers.flatMap((c) => c.hostLinks).filter((l) => tryRun(['ip', 'link', 'show', 'dev', l]).status === 0),
      ipam: filesUnder(ipamDir),
      tuning: filesUnder(tuningDir),
      portmap: filesUnder(portmapDir),
    });
    const before = snapshot();
    const masquerades = (rules: string[], c: { containerId: string }) => rules.some((l) => l.includes(`id: \\"${c.containerId}\\"`) && l.endsWith('-j MASQUERADE'));
    for (const c of containers) expect(masquerades(before.iptables, c), c.containerId).toBe(true);
    expect(before.links).toEqual(containers.flatMap((c) => c.hostLinks));
    expect(before.ipam.filter((f) => f.startsWith(`${net}/10.${a}.${b}.`))).toHaveLength(2);
    expect(before.tuning.filter((f) => f.endsWith('.json'))).toHaveLength(2);

    const gcConfs: Record<string, unknown>[] = [
      ...plugins,
      { type: 'host-local', ipam: plugins[0]!.ipam, ...plugins[0]!.ipam },
      { type: 'loopback' },
      { type: 'vxlan', network: '10.0.0.0/8', subnet: `10.${a}.${b}.0/24`, peers: [], stateDir: s.tmpdir(), bridge: br },
    ];
    expect(gcConfs.map((c) => c.type).sort()).toEqual(['bandwidth', 'bridge', 'firewall', 'host-local', 'loopback', 'portmap', 'tuning', 'vxlan']);
    for (const conf of gcConfs) {
      const r = execPlugin(join(OUR_BIN, conf.type as string), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: net, ...conf });
      expect(r.status, `${conf.type}: ${r.stdout}`).toBe(1);
      expect(r.json, conf.type as string).toMatchObject({ cniVersion: '1.1.0', code: 7, msg: 'GC needs cni.dev/valid-attachments in the config' });
    }
    expect(snapshot()).toEqual(before);

    // with the list, GC keeps what it names and sweeps the rest (the refusal is about the missing list only)
    const [keep] = containers;
    const gc = execPlugin(join(OUR_BIN, 'bridge'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: net, ...plugins[0], 'cni.dev/attachments': [{ containerID: keep!.containerId, ifname: 'eth0' }] });
    expect(gc.status, gc.stdout).toBe(0);
    expect(filesUnder(ipamDir).filter((f) => f.startsWith(`${net}/10.${a}.${b}.`))).toEqual([`${net}/${keep!.ip}`]);
    const after = snapshot().iptables;
    expect(containers.map((c) => masquerades(after, c))).toEqual([true, false]);
  });
});

describe('host-local: two ADDs of one owner at once', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  const start = (command: string, id: string, conf: object) =>
    new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const env = { ...baseEnv(), CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
      const child = spawn(join(OUR_BIN, 'host-local'), [], { env, stdio: ['pipe', 'pipe', 'ignore'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stdin.end(JSON.stringify(conf));
      child.on('close', (status) => resolve({ status, stdout }));
    });

  it('end with one reservation (the other ADD returns the same address or fails cleanly); DEL leaves none', async () => {
    const dataDir = s.tmpdir();
    const conf = { cniVersion: '1.0.0', name: 'same-owner', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.9.0.0/24' }]] } };
    const store = join(dataDir, 'same-owner');
    const reservationsOf = (id: string) => readdirSync(store).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f) && readFileSync(join(store, f), 'utf8').startsWith(`${id}\r\n`));
    for (let round = 0; round < 30; round++) {
      const id = `${s.prefix}-r${round}`;
      const runs = await Promise.all([start('ADD', id, conf), start('ADD', id, conf)]);
      const mine = reservationsOf(id);
      expect(mine, `round ${round}`).toHaveLength(1);
      const ok = runs.filter((r) => r.status === 0);
      expect(ok.length, `round ${round}`).toBeGreaterThanOrEqual(1);
      for (const r of ok) expect(JSON.parse(r.stdout).ips[0].address).toBe(`${mine[0]}/24`);
      for (const r of runs.filter((x) => x.status !== 0)) expect(JSON.parse(r.stdout), `round ${round}`).toMatchObject({ code: expect.any(Number), msg: expect.stringMatching(/duplicate allocation|in progress/) });
      const del = await start('DEL', id, conf);
      expect(del.status).toBe(0);
      expect(reservationsOf(id), `round ${round}`).toEqual([]);
    }
    expect(readdirSync(join(store, '.tscni/owners')).filter((k) => !k.startsWith('.'))).toEqual([]);
  });
});

describe('tuning DEL with a planted state file', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('restores the net.* sysctls it could have saved and nothing else', () => {
    const ns = s.netns();
    const dataDir = s.tmpdir();
    const id = s.name('c');
    const planted = 'tscni-planted';
    writeFileSync(
      join(dataDir, `${id}_eth0.json`),
      JSON.stringify({ network: 'tn', containerId: id, ifname: 'eth0', link: {}, sysctl: { 'net/core/somaxconn': '555', 'kernel/domainname': planted, 'net/../kernel/domainname': planted, 'net.core.somaxconn': '1' } }),
    );
    // in a UTS namespace of its own, so a kernel.* write (if the bug came back) stays there; the
    // shell prints that namespace's domain name after the plugin
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'tn', type: 'tuning', dataDir, prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [] } });
    const env = { ...baseEnv(), CNI_COMMAND: 'DEL', CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
    const r = spawnSync('unshare', ['--uts', 'sh', '-c', `${join(OUR_BIN, 'tuning')} && echo && cat /proc/sys/kernel/domainname`], { input: stdin, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(planted);
    expect(r.stdout.trim()).not.toBe('');
    for (const path of ['kernel/domainname', 'net/../kernel/domainname', 'net.core.somaxconn']) {
      expect(r.stderr, path).toContain(`"path":${JSON.stringify(path)}`);
    }
    expect(r.stderr).toContain('not restoring a saved sysctl');
    expect(sh(['ip', 'netns', 'exec', ns.name, 'sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('555');
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('vxlan/etcd: a planted lease naming this node', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('is ignored with an error line unless it is a /subnetLen vxlan lease of our VNI inside the network', async () => {
    const ns = loneNode(s, 'k');
    const dir = s.tmpdir();
    const etcd = new EtcdServer(s, ns);
    await etcd.start();
    const etcdctl = (...args: string[]) => etcd.ctl(args);

    const prefix = `/${s.prefix}/network`;
    const me = '192.168.100.1';
    const lease = (vni: number, backend = 'vxlan') => JSON.stringify({ PublicIP: me, BackendType: backend, BackendData: { VNI: vni, VtepMAC: '0a:01:c0:a8:64:01' } });
    const planted: Record<string, string> = {
      '192.168.1.0-24': lease(1), // outside the network
      '0.0.0.0-1': lease(1), // outside, and another length
      '10.244.128.0-17': lease(1), // inside, another length
      '10.244.1.0-24': lease(2), // another VNI
      '10.244.2.0-24': lease(1, 'host-gw'), // another backend
    };
    const plant = () => Object.entries(planted).forEach(([k, v]) => etcdctl('put', `${prefix}/subnets/${k}`, v));
    plant();
    const stateDir = join(dir, 'state');
    const confFile = join(dir, 'overlay.conflist');
    mkdirSync(dir, { recursive: true });
    writeFileSync(confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'overlay', plugins: [{ type: 'vxlan', network: '10.244.0.0/16', subnetLen: 24, stateDir, etcd: { endpoints: [etcd.url], prefix, leaseTTL: 600 }, ipam: { dataDir: join(dir, 'ipam') } }] }));
    const sync = () => {
      const r = spawnSync('ip', ['netns', 'exec', ns, join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--conf', confFile], { env: baseEnv(), encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return { subnet: JSON.parse(r.stdout).subnet as string, errors: r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.level === 'error') };
    };
    const ignored = (errors: { msg: string; key?: string }[]) => errors.filter((e) => e.msg.startsWith('ignoring a lease naming this node')).map((e) => e.key!.slice(`${prefix}/subnets/`.length)).sort();

    // a fresh node: none of the planted leases is adopted; it leases the first free proper subnet
    const first = sync();
    expect(first.subnet).toBe('10.244.3.0/24');
    expect(ignored(first.errors)).toEqual(Object.keys(planted).sort());
    expect(etcdctl('get', `${prefix}/subnets/10.244.3.0-24`, '--print-value-only')).toContain(`"PublicIP":"${me}"`);

    // a node with its lease: planted ones appearing later do not move it
    etcdctl('del', '--prefix', `${prefix}/subnets/1`); // the planted 10.244.* ones and ours…
    plant(); // …then they are back, and ours is gone: the state file's subnet is reclaimed
    const second = sync();
    expect(second.subnet).toBe('10.244.3.0/24');
    expect(ignored(second.errors)).toEqual(Object.keys(planted).sort());
    const third = sync();
    expect(third.subnet).toBe('10.244.3.0/24');
  });
});

describe('vxlan sync --watch: a rejected peer', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('is logged once per change of its reason, not on every reconcile', async () => {
    const ns = loneNode(s, 'k');
    const dir = s.tmpdir();
    const peersFile = join(dir, 'peers.json');
    const writePeers = (entries: unknown[]) => writePeersFile(peersFile, entries);
    const claimsOurs = { subnet: '10.244.1.0/24', ip: '172.16.9.9' };
    writePeers([claimsOurs, peer(1)]);
    const confFile = join(dir, 'overlay.conf');
    writeFileSync(confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'overlay', type: 'vxlan', network: '10.0.0.0/8', subnet: '10.244.1.0/24', peersFile, stateDir: join(dir, 'state'), ipam: { dataDir: join(dir, 'ipam') } }));
    const watcher = spawn('ip', ['netns', 'exec', ns, join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', confFile], { env: baseEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    s.defer(() => watcher.exitCode === null && watcher.kill('SIGKILL'));
    let stderr = '';
    watcher.stderr!.on('data', (d: Buffer) => (stderr += d));
    const rejections = () => stderr.split('\n').filter((l) => l.includes('"rejected peer"') && l.includes(`"origin":"${peersFile}#0"`));
    const routes = () => {
      const r = tryRun(['ip', '-n', ns, '-json', 'route', 'show', 'dev', DEVICE]);
      return r.status === 0 ? (JSON.parse(r.stdout || '[]') as { dst: string }[]).map((x) => x.dst).sort() : [];
    };
    const until = async (what: string, cond: () => boolean) => {
      const end = Date.now() + 30_000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`gave up waiting for ${what}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until('first sync', () => routes().length === 1);
    expect(rejections()).toHaveLength(1);
    // two more reconciles with the same bad entry: a peer joins, then leaves
    writePeers([claimsOurs, peer(1), peer(2)]);
    await until('peer 2 joins', () => routes().length === 2);
    writePeers([claimsOurs, peer(1)]);
    await until('peer 2 leaves', () => routes().length === 1);
    expect(rejections()).toHaveLength(1);
    // the same origin rejected for another reason: logged again
    writePeers([{ subnet: 'nonsense', ip: '172.16.9.9' }, peer(1)]);
    await until('the new reason logged', () => rejections().length === 2);
    expect(rejections()[1]).toContain('is not an IPv4 CIDR');
    watcher.kill('SIGTERM');
  });
});

describe('files a plugin writes, through the built binary', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('vxlan: a directory at its lock path is code 5 once the lock deadline passes; nothing is created', () => {
    const node = loneNode(s, 'k');
    const pod = s.netns('p');
    const stateDir = s.tmpdir();
    mkdirSync(join(stateDir, `${DEVICE}.lock`));
    const links = () => sh(['ip', '-n', node, '-o', 'link', 'show']);
    const before = links();
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'lk', type: 'vxlan', network: '10.250.0.0/16', subnet: '10.250.1.0/24', peers: [], stateDir, ipam: { dataDir: s.tmpdir() } });
    const env = { ...baseEnv(), CNI_COMMAND: 'ADD', CNI_CONTAINERID: s.name('c'), CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
    const r = spawnSync('ip', ['netns', 'exec', node, join(OUR_BIN, 'vxlan')], { input: stdin, env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 5, msg: `lock ${join(stateDir, `${DEVICE}.lock`)} is a directory, not a lock file` });
    expect(links()).toBe(before);
    expect(readdirSync(stateDir)).toEqual([`${DEVICE}.lock`]);
  });

  it('a log file that is a symbolic link is not followed: nothing is written through it, the call succeeds', () => {
    const ctr = s.netns('c');
    const dir = s.tmpdir();
    const target = join(dir, 'target');
    symlinkSync(target, join(dir, 'plugin.log'));
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'lg', type: 'loopback', log: { level: 'debug', file: join(dir, 'plugin.log') } });
    const env = { ...baseEnv(), CNI_COMMAND: 'ADD', CNI_CONTAINERID: s.name('c'), CNI_NETNS: ctr.path, CNI_IFNAME: 'lo' };
    const r = spawnSync(join(OUR_BIN, 'loopback'), [], { input: stdin, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr, 'the log lines still reach stderr').toContain('"msg":"start"');
    expect(existsSync(target)).toBe(false);
  });
});
