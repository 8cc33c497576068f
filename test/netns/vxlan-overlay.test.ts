import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EtcdServer } from '../support/etcd-server.ts';
import { CNITOOL, OUR_BIN } from '../support/paths.ts';
import { runAsync } from '../support/run-async.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { ipJson, pings } from '../support/kernel.ts';
import { until } from '../support/until.ts';
import { background, baseEnv, inNode, peerRoutes, tscni, VxlanCluster, type VxlanNode as Node, type VxlanPod } from '../support/vxlan-cluster.ts';
import { DEVICE, underlayEtcd, underlayIp } from '../support/vxlan-node.ts';
import { vtepMac } from '../../plugins/vxlan/peers.ts';

/** Simulated nodes and pods (support/vxlan-cluster.ts), peers from a file or etcd. */

const NETWORK = '10.244.0.0/16';

interface Pod extends VxlanPod {
  ip: string;
}

/** The plugin binary exec'd by a runtime on that node. */
function plugin(node: Node, command: string, pod: { path: string; id: string }, conf: unknown = node.conf, ifname = 'eth0') {
  const env = { CNI_COMMAND: command, CNI_CONTAINERID: pod.id, CNI_NETNS: pod.path, CNI_IFNAME: ifname, CNI_PATH: OUR_BIN };
  return inNode(node, [join(OUR_BIN, 'vxlan')], env, JSON.stringify(conf));
}

class Cluster extends VxlanCluster {
  constructor(s: Scope, extra: (i: number, c: VxlanCluster) => Record<string, unknown> = (i, c) => ({ subnet: `10.244.${i}.0/24`, peersFile: c.peersFile })) {
    super(s, (i, c) => ({ network: NETWORK, ...extra(i, c) }));
  }

  peerEntries(nodes = this.nodes) {
    return nodes.map((n) => ({ subnet: `10.244.${n.i}.0/24`, ip: underlayIp(n.i) }));
  }

  addPod(node: Node): Pod {
    const pod = this.attachPod(node);
    return { ...pod, ip: String(pod.result.ips[0].address).split('/')[0]! };
  }
}

function nstat(ns: string): Record<string, number> {
  const out = sh(['ip', 'netns', 'exec', ns, 'nstat', '-a', '-s', '-z', '-j', 'IpFragCreates', 'IpReasmReqds']);
  return JSON.parse(out).kernel;
}

describe('vxlan overlay (file peers)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('connects every pod to every pod across 3 nodes; MTU exact with DF; no fragmentation; DEL keeps the device; teardown removes all', () => {
    const c = new Cluster(s);
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    const pods = nodes.flatMap((n) => [c.addPod(n), c.addPod(n)]);

    // kernel state on node 1: device as specified, a route + permanent neighbour + FDB entry per peer
    const n1 = nodes[0]!;
    const dev = ipJson<any[]>(['-d', 'link', 'show', DEVICE], n1.ns)[0];
    expect(dev.mtu).toBe(1450);
    expect(dev.address).toBe(vtepMac(1, underlayIp(1)));
    expect(dev.linkinfo.info_data).toMatchObject({ id: 1, local: underlayIp(1), link: 'eth0', port: 4789, learning: false });
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    const neigh = ipJson<any[]>(['neigh', 'show', 'dev', DEVICE], n1.ns).filter((n) => !n.dst.includes(':'));
    expect(neigh.map((n) => [n.dst, n.lladdr, n.state]).sort()).toEqual([
      ['10.244.2.0', vtepMac(1, underlayIp(2)), ['PERMANENT']],
      ['10.244.3.0', vtepMac(1, underlayIp(3)), ['PERMANENT']],
    ].sort());
    const fdb = JSON.parse(inNode(n1, ['bridge', '-json', 'fdb', 'show', 'dev', DEVICE]).stdout);
    expect(fdb.map((f: any) => [f.mac, f.dst, f.state]).sort()).toEqual([
      [vtepMac(1, underlayIp(2)), underlayIp(2), 'permanent'],
      [vtepMac(1, underlayIp(3)), underlayIp(3), 'permanent'],
    ].sort());
    expect(inNode(n1, ['cat', '/proc/sys/net/ipv4/ip_forward']).stdout.trim()).toBe('1');
    expect(pods[0]!.ip.startsWith('10.244.1.')).toBe(true);
    expect(pods[2]!.ip.startsWith('10.244.2.')).toBe(true);
    expect(ipJson<any[]>(['link', 'show', 'eth0'], pods[0]!.ns)[0].mtu).toBe(1450);

    // all pairs, including across nodes
    for (const a of pods) for (const b of pods) if (a !== b) expect(pings(a.ns, b.ip), `${a.ip} -> ${b.ip}`).toBe(true);

    // DF: exactly the pod MTU passes, one byte more fails (1450 - 20 IP - 8 ICMP = 1422 payload)
    expect(pings(pods[0]!.ns, pods[4]!.ip, ['-M', 'do', '-s', '1422'])).toBe(true);
    expect(pings(pods[0]!.ns, pods[4]!.ip, ['-M', 'do', '-s', '1423'])).toBe(false);

    // a TCP transfer across nodes does not fragment on the underlay
    const before = [nodes[0]!, nodes[2]!].map((n) => nstat(n.ns));
    // The server keeps listening (no -1), so a client that raced its start or was cut short can retry.
    const server = spawn('ip', ['netns', 'exec', pods[4]!.ns, 'iperf3', '-s', '-B', pods[4]!.ip], { stdio: 'ignore' });
    s.defer(() => server.kill('SIGKILL'));
    const sentBytes = (out: string): number | undefined => {
      try {
        return JSON.parse(out).end?.sum_sent?.bytes;
      } catch {
        return undefined;
      }
    };
    let client: ReturnType<typeof tryRun> | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      client = tryRun(['ip', 'netns', 'exec', pods[0]!.ns, 'iperf3', '-c', pods[4]!.ip, '-n', '20M', '-J']);
      if (client.status === 0 && sentBytes(client.stdout) !== undefined) break;
      spawnSync('sleep', ['0.1']);
    }
    expect(client!.status, client!.stderr + client!.stdout.slice(0, 500)).toBe(0);
    expect(sentBytes(client!.stdout)).toBeGreaterThanOrEqual(20 * 1024 * 1024);
    const after = [nodes[0]!, nodes[2]!].map((n) => nstat(n.ns));
    for (const k of [0, 1]) {
      expect(after[k]!.IpFragCreates).toBe(before[k]!.IpFragCreates);
      expect(after[k]!.IpReasmReqds).toBe(before[k]!.IpReasmReqds);
    }

    // CHECK passes with the result as prevResult
    const pod = pods[0]!;
    const check = plugin(n1, 'CHECK', pod, { ...n1.conf, prevResult: pod.result });
    expect(check.status, check.stdout + check.stderr).toBe(0);

    // DEL of every pod on node 1 keeps the device and its peers
    for (const p of pods.filter((p) => p.node === n1)) {
      const del = plugin(n1, 'DEL', { path: p.path, id: p.id });
      expect(del.status, del.stdout + del.stderr).toBe(0);
      expect(plugin(n1, 'DEL', { path: p.path, id: p.id }).status).toBe(0);
    }
    expect(ipJson<any[]>(['link', 'show', DEVICE], n1.ns)).toHaveLength(1);
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    // STATUS is fine while the device is up
    const status = plugin(n1, 'STATUS', { path: '', id: '' }, { ...n1.conf, cniVersion: '1.1.0' });
    expect(status.status, status.stdout).toBe(0);

    // teardown removes the device, the bridge and the state
    const down = tscni(n1, 'vxlan', 'teardown', '--conf', n1.confFile);
    expect(down.status, down.stderr).toBe(0);
    const links = ipJson<any[]>(['link', 'show'], n1.ns).map((l) => l.ifname);
    expect(links).not.toContain(DEVICE);
    expect(links).not.toContain('cni0');
    const after2 = plugin(n1, 'STATUS', { path: '', id: '' }, { ...n1.conf, cniVersion: '1.1.0' });
    expect(after2.status).toBe(1);
    expect(after2.json.code).toBe(50);
  });

  it('STATUS is code 50 before the node has its device; CHECK reports a missing peer entry', () => {
    const c = new Cluster(s);
    const [n1] = [1, 2].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    const status = plugin(n1!, 'STATUS', { path: '', id: '' }, { ...n1!.conf, cniVersion: '1.1.0' });
    expect(status.json).toMatchObject({ code: 50 });
    const pod = c.addPod(n1!);
    inNode(n1!, ['ip', 'neigh', 'del', '10.244.2.0', 'dev', DEVICE]);
    const check = plugin(n1!, 'CHECK', pod, { ...n1!.conf, prevResult: undefined });
    expect(check.status).toBe(1);
    expect(check.json.msg).toMatch(/missing peer entries/);
    expect(check.json.details).toContain('neigh replace 10.244.2.0');
    // sync --full repairs it (an ADD whose peers did not change, and a plain sync, diff against what they applied)
    expect(JSON.parse(tscni(n1!, 'vxlan', 'sync', '--conf', n1!.confFile).stdout)).toMatchObject({ peers: 1, changed: 0, diff: 'state' });
    const sync = tscni(n1!, 'vxlan', 'sync', '--full', '--conf', n1!.confFile);
    expect(sync.status, sync.stderr).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ subnet: '10.244.1.0/24', peers: 1, changed: 1, diff: 'kernel' });
  });

  it('an ADD with unchanged peers skips the peer reconcile; a changed peers file is applied by the next ADD; CHECK and sync --full still compare with the kernel', () => {
    const c = new Cluster(s);
    const [n1] = [1, 2, 3].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries().slice(0, 2));
    const add = () => {
      const pod = { path: s.netns('p').path, id: s.name('c') };
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN, TSCNI_LOG: 'debug' };
      const r = inNode(n1!, [join(OUR_BIN, 'vxlan')], env, JSON.stringify(n1!.conf));
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const line = r.stderr.split('\n').find((l) => l.includes('"node reconciled"'));
      expect(line, r.stderr).toBeDefined();
      return { pod, summary: JSON.parse(line!) };
    };
    expect(add().summary).toMatchObject({ peers: 1, changed: 1, removed: 0 });
    expect(add().summary).toMatchObject({ unchanged: true });
    c.writePeers(c.peerEntries());
    expect(add().summary).toMatchObject({ peers: 2, changed: 1 });
    expect(peerRoutes(n1!)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    // an entry removed behind our back: the skipping ADD does not see it, CHECK does, sync --full repairs it
    inNode(n1!, ['ip', 'route', 'del', '10.244.3.0/24', 'dev', DEVICE]);
    const { pod, summary } = add();
    expect(summary).toMatchObject({ unchanged: true });
    const check = plugin(n1!, 'CHECK', pod, { ...n1!.conf, prevResult: undefined });
    expect(check.json?.msg ?? '', check.stdout).toMatch(/missing peer entries/);
    const sync = tscni(n1!, 'vxlan', 'sync', '--full', '--conf', n1!.confFile);
    expect(JSON.parse(sync.stdout)).toMatchObject({ peers: 2, changed: 1 });
    expect(peerRoutes(n1!)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    // a device that is not as specified (here: down) is never skipped
    inNode(n1!, ['ip', 'link', 'set', DEVICE, 'down']);
    expect(add().summary).toMatchObject({ peers: 2, changed: 2 });
    expect(peerRoutes(n1!)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
  });

  it('follows the peers file with sync --watch: join, move, leave; bad entries are rejected and break nothing', async () => {
    const c = new Cluster(s);
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries(nodes.slice(0, 2)));
    const n1 = nodes[0]!;
    const watcher = background(s, n1, [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', n1.confFile]);
    await until('first sync', () => peerRoutes(n1).length === 1);
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24']);

    // join
    c.writePeers(c.peerEntries(nodes));
    await until('node 3 joins', () => peerRoutes(n1).length === 2);
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);

    // bad data next to good: rejected with a log line, existing routes untouched
    c.writePeers([
      ...c.peerEntries(nodes),
      { subnet: '10.244.1.0/24', ip: '192.168.100.66' },
      { subnet: '10.244.2.128/25', ip: '192.168.100.67' },
      { subnet: 'nonsense', ip: '192.168.100.68' },
    ]);
    await until('rejections logged', () => (watcher.output().match(/rejected peer/g) ?? []).length >= 3);
    expect(watcher.output()).toContain('claims our subnet 10.244.1.0/24');
    expect(watcher.output()).toContain('overlaps 10.244.2.0/24');
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    // a file that is not JSON at all changes nothing
    writeFileSync(c.peersFile, '{ not json');
    await until('unreadable file logged', () => watcher.output().includes('is not JSON'));
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);

    // a node that moved to another underlay address: its FDB entry follows (replace, not append)
    c.writePeers([...c.peerEntries(nodes.slice(0, 2)), { subnet: '10.244.3.0/24', ip: '192.168.100.33', mac: vtepMac(1, underlayIp(3)) }]);
    const fdbDst = () => JSON.parse(inNode(n1, ['bridge', '-json', 'fdb', 'show', 'dev', DEVICE]).stdout).find((f: any) => f.mac === vtepMac(1, underlayIp(3)))?.dst;
    await until('node 3 moves', () => fdbDst() === '192.168.100.33');

    // leave
    c.writePeers(c.peerEntries(nodes.slice(0, 2)));
    await until('node 3 leaves', () => peerRoutes(n1).length === 1);
    expect(peerRoutes(n1)).toEqual(['10.244.2.0/24']);
    expect(ipJson<any[]>(['neigh', 'show', '10.244.3.0', 'dev', DEVICE], n1.ns)).toEqual([]);
    watcher.kill('SIGTERM');
    await until('watcher exits', () => watcher.exitCode !== null);
    expect(watcher.exitCode).toBe(0);
  });

  it('works through cnitool (libcni) run on the node', () => {
    const c = new Cluster(s);
    const nodes = [1, 2].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    const remote = c.addPod(nodes[1]!);
    const pod = s.netns('p');
    const env = { NETCONFPATH: nodes[0]!.dir, CNI_PATH: OUR_BIN, CNI_CACHEDIR: s.tmpdir() };
    const add = inNode(nodes[0]!, [CNITOOL, 'add', 'overlay', pod.path], env);
    expect(add.status, add.stderr).toBe(0);
    expect(add.json.ips[0].address).toMatch(/^10\.244\.1\.\d+\/24$/);
    expect(add.json.routes).toEqual([{ dst: NETWORK }]);
    expect(pings(pod.name, remote.ip)).toBe(true);
    const check = inNode(nodes[0]!, [CNITOOL, 'check', 'overlay', pod.path], env);
    expect(check.status, check.stderr).toBe(0);
    expect(inNode(nodes[0]!, [CNITOOL, 'del', 'overlay', pod.path], env).status).toBe(0);
    expect(pings(pod.name, remote.ip)).toBe(false);
  });

  it('ipMasq masquerades only traffic leaving the cluster network; teardown removes the rules', () => {
    const c = new Cluster(s, (i) => ({ subnet: `10.244.${i}.0/24`, peersFile: c.peersFile, ipMasq: true, isDefaultGateway: true }));
    const nodes = [1, 2].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    const [a, b] = nodes.map((n) => c.addPod(n));
    const masqueraded = () => {
      const out = inNode(nodes[0]!, ['iptables', '-t', 'nat', '-L', 'TSCNI-VXLAN-tscni.1', '-v', '-x', '-n']).stdout;
      return Number(out.split('\n').find((l) => l.includes('MASQUERADE'))!.trim().split(/\s+/)[0]);
    };
    expect(pings(a!.ns, b!.ip)).toBe(true);
    expect(masqueraded()).toBe(0);
    expect(pings(a!.ns, '192.168.100.254')).toBe(true); // the underlay has no route back to pods: only masquerading gets a reply
    expect(masqueraded()).toBeGreaterThan(0);
    expect(tscni(nodes[0]!, 'vxlan', 'teardown', '--conf', nodes[0]!.confFile).status).toBe(0);
    expect(inNode(nodes[0]!, ['iptables-save', '-t', 'nat']).stdout).not.toContain('TSCNI-VXLAN');
  });

  it('disableTxChecksum turns tx-checksum-ip-generic off on the device it creates (and only then)', () => {
    const c = new Cluster(s, (i) => ({ subnet: `10.244.${i}.0/24`, peersFile: c.peersFile, disableTxChecksum: i === 1 }));
    const nodes = [1, 2].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    for (const n of nodes) expect(tscni(n, 'vxlan', 'sync', '--conf', n.confFile).status).toBe(0);
    const csum = (n: Node) => /tx-checksum-ip-generic: (\w+)/.exec(inNode(n, ['ethtool', '-k', DEVICE]).stdout)?.[1];
    expect(csum(nodes[0]!)).toBe('off');
    expect(csum(nodes[1]!)).toBe('on');
    const [a, b] = nodes.map((n) => c.addPod(n));
    expect(pings(a!.ns, b!.ip)).toBe(true);
  });

  it('GC through the bridge releases reservations of attachments that are not valid any more', () => {
    const c = new Cluster(s);
    const n1 = c.addNode(1);
    c.writePeers(c.peerEntries());
    const [keep, stale] = [c.addPod(n1), c.addPod(n1)];
    const reserved = () => readdirSync(join(n1.dir, 'ipam', 'overlay')).filter((f) => f.startsWith('10.244.')).sort();
    expect(reserved()).toEqual([keep!.ip, stale!.ip].sort());
    const gc = plugin(n1, 'GC', { path: '', id: '' }, { ...n1.conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: keep!.id, ifname: 'eth0' }] });
    expect(gc.status, gc.stdout + gc.stderr).toBe(0);
    expect(reserved()).toEqual([keep!.ip]);
  });

  it('concurrent ADDs on a fresh node all succeed, with distinct addresses', async () => {
    const c = new Cluster(s);
    const [n1, n2] = [1, 2].map((i) => c.addNode(i));
    c.writePeers(c.peerEntries());
    const remote = c.addPod(n2!);
    const pods = Array.from({ length: 6 }, () => ({ ...s.netns('p'), id: s.name('c') }));
    const runs = await Promise.all(
      pods.map((p) => {
        const env = { ...baseEnv(), CNI_COMMAND: 'ADD', CNI_CONTAINERID: p.id, CNI_NETNS: p.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
        return runAsync(['ip', 'netns', 'exec', n1!.ns, join(OUR_BIN, 'vxlan')], { env, input: JSON.stringify(n1!.conf) });
      }),
    );
    for (const r of runs) expect(r.status, r.stdout + r.stderr).toBe(0);
    const ips = runs.map((r) => JSON.parse(r.stdout.split('\n')[0]!).ips[0].address);
    expect(new Set(ips).size).toBe(6);
    for (const p of pods) expect(pings(p.name, remote.ip)).toBe(true);
  });

  it('rejects a bad config before touching anything', () => {
    const c = new Cluster(s);
    const n1 = c.addNode(1);
    const pod = s.netns('p');
    const r = plugin(n1, 'ADD', { path: pod.path, id: s.name('c') }, { ...n1.conf, subnet: '10.99.0.0/24' });
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 7 });
    expect(ipJson<any[]>(['link', 'show'], n1.ns).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
  });
});

describe('vxlan overlay (etcd)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('leases subnets, follows joins and leaves with --watch, survives an etcd restart', async () => {
    let etcd: EtcdServer | undefined;
    const prefix = `/${s.prefix}/network`;
    // the watching nodes use a short TTL (kept alive every 2 s); the others a long one
    const c = new Cluster(s, (i) => ({ etcd: { endpoints: [etcd!.url], prefix, leaseTTL: i <= 3 ? 6 : 600 } }));
    etcd = underlayEtcd(s, c.underlay);
    await etcd.start();
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    const watchers = nodes.map((n) => background(s, n, [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', n.confFile]));
    for (const n of nodes) await until(`node ${n.i} sees 2 peers`, () => peerRoutes(n).length === 2);
    const pods = nodes.map((n) => c.addPod(n));
    const subnets = pods.map((p) => p.result.ips[0].address.replace(/\.\d+\/24$/, '.0/24'));
    expect(new Set(subnets).size).toBe(3);
    expect(etcd.keys(prefix).sort()).toEqual(subnets.map((sn) => `${prefix}/subnets/${sn.replace('/', '-')}`).sort());
    for (const a of pods) for (const b of pods) if (a !== b) expect(pings(a.ns, b.ip), `${a.ip} -> ${b.ip}`).toBe(true);

    // a fixed subnet another node holds is refused with code 7 and nothing is made
    const n4 = c.addNode(4);
    const conflict = plugin(n4, 'ADD', { path: s.netns('p').path, id: s.name('c') }, { ...n4.conf, subnet: subnets[0] });
    expect(conflict.json).toMatchObject({ code: 7 });
    expect(conflict.json.msg).toContain('is leased by 192.168.100.');

    // join: node 4 syncs once (leases a subnet); the watchers add it
    const joined = tscni(n4, 'vxlan', 'sync', '--conf', n4.confFile);
    expect(joined.status, joined.stderr).toBe(0);
    const n4subnet = JSON.parse(joined.stdout).subnet;
    for (const n of nodes) await until(`node ${n.i} sees node 4`, () => peerRoutes(n).includes(n4subnet));
    const pod4 = c.addPod(n4);
    expect(pings(pods[0]!.ns, pod4.ip)).toBe(true);

    // leave: teardown drops the lease; the watchers remove its entries
    expect(tscni(n4, 'vxlan', 'teardown', '--conf', n4.confFile).status).toBe(0);
    for (const n of nodes) await until(`node ${n.i} forgets node 4`, () => !peerRoutes(n).includes(n4subnet));
    expect(etcd.keys(prefix)).toHaveLength(3);

    // etcd restart: nothing lost, the watchers reconnect and see the next join
    const routesBefore = nodes.map(peerRoutes);
    await etcd.stop();
    expect(nodes.map(peerRoutes)).toEqual(routesBefore);
    expect(pings(pods[0]!.ns, pods[2]!.ip)).toBe(true);
    await etcd.start();
    expect(etcd.keys(prefix)).toHaveLength(3);
    const n5 = c.addNode(5);
    const joined5 = tscni(n5, 'vxlan', 'sync', '--conf', n5.confFile);
    expect(joined5.status, joined5.stderr).toBe(0);
    const n5subnet = JSON.parse(joined5.stdout).subnet;
    for (const n of nodes) await until(`node ${n.i} sees node 5 after the restart`, () => peerRoutes(n).includes(n5subnet));
    expect(nodes.map(peerRoutes)).toEqual(routesBefore.map((r) => [...r, n5subnet].sort()));
    for (const a of pods) for (const b of pods) if (a !== b) expect(pings(a.ns, b.ip), `${a.ip} -> ${b.ip} after restart`).toBe(true);

    // a node whose lease is revoked (or expired) leases again, and the others follow
    const state = JSON.parse(readFileSync(join(nodes[0]!.dir, 'state', `${DEVICE}.json`), 'utf8'));
    etcd.ctl(['lease', 'revoke', BigInt(state.leaseId).toString(16)]);
    const key1 = `${prefix}/subnets/${state.subnet.replace('/', '-')}`;
    await until('node 1 leases again', () => etcd!.keys(prefix).includes(key1));
    await until('node 2 has node 1 again', () => peerRoutes(nodes[1]!).includes(state.subnet));
    expect(pings(pods[1]!.ns, pods[0]!.ip)).toBe(true);

    for (const w of watchers) w.kill('SIGTERM');
    for (const w of watchers) await until('watcher exits', () => w.exitCode !== null);
    expect(watchers.map((w) => w.exitCode)).toEqual([0, 0, 0]);
  });
});
