import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EtcdServer } from '../support/etcd-server.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { ipJson, pings } from '../support/kernel.ts';
import { until } from '../support/until.ts';
import { background, inNode, peerRoutes, peerRoutes6, tscni, VxlanCluster, type VxlanNode as Node, type VxlanPod } from '../support/vxlan-cluster.ts';
import { DEVICE, underlayEtcd, underlayIp, underlayIp6, UNDERLAY_GW6 } from '../support/vxlan-node.ts';

/**
 * Dual-stack overlay: simulated nodes (support/vxlan-cluster.ts), one pod per node, over an IPv4
 * or an IPv6 underlay. Peers from a file or etcd.
 */

const NET4 = '10.244.0.0/16';
const NET6 = 'fd00:10:244::/56';
const sub4 = (i: number) => `10.244.${i}.0/24`;
const sub6 = (i: number) => `fd00:10:244:${i}::/64`;

interface Pod extends VxlanPod {
  v4?: string;
  v6?: string;
}

type Underlay = 4 | 6;

class Cluster extends VxlanCluster {
  constructor(s: Scope, family: Underlay, extra: (i: number) => Record<string, unknown>) {
    // an IPv6-only underlay has no IPv4 default route to find it by: it is named
    super(s, (i) => ({ ...(family === 6 ? { underlay: 'eth0' } : {}), ...extra(i) }), family);
    sh(['ip', '-n', this.underlay, 'addr', 'add', `${UNDERLAY_GW6}/64`, 'dev', 'br0', 'nodad']);
  }

  addPod(node: Node): Pod {
    const pod: Pod = this.attachPod(node);
    for (const a of (pod.result.ips as { address: string }[]).map((x) => x.address.split('/')[0]!)) pod[a.includes(':') ? 'v6' : 'v4'] = a;
    if (pod.v6) settleIpv6(node.ns, pod.ns);
    // a TCP echo on both families (an IPv4 client arrives v4-mapped)
    const server = spawn('ip', ['netns', 'exec', pod.ns, 'socat', 'TCP6-LISTEN:7777,fork,reuseaddr,ipv6only=0', 'SYSTEM:echo hello'], { stdio: 'ignore' });
    this.s.defer(() => server.exitCode === null && server.kill('SIGKILL'));
    return pod;
  }
}

/**
 * Waits (bounded) until no IPv6 address is tentative on the node's bridge or in the pod: the
 * bridge's gateway address runs DAD when the first pod of a node creates it, and a pod's first
 * packets to it go unanswered until then (the bridge plugin's matter, not the overlay's).
 */
function settleIpv6(nodeNs: string, podNs: string): void {
  const tentative = (ns: string, dev: string) => sh(['ip', '-n', ns, '-6', 'addr', 'show', 'dev', dev, 'tentative']).trim() !== '';
  for (let i = 0; i < 100 && (tentative(nodeNs, 'cni0') || tentative(podNs, 'eth0')); i++) spawnSync('sleep', ['0.05']);
}

/** Whether a TCP connection from `from` to `ip` gets the echo (retried while the server starts). */
function tcpReaches(from: Pod, ip: string): boolean {
  const target = ip.includes(':') ? `TCP6:[${ip}]:7777` : `TCP4:${ip}:7777`;
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = tryRun(['ip', 'netns', 'exec', from.ns, 'socat', '-T', '3', '-', `${target},connect-timeout=2`]);
    if (r.status === 0 && r.stdout.trim() === 'hello') return true;
    spawnSync('sleep', ['0.1']);
  }
  return false;
}

/** Every pod reaches every other by each address it has, by ping and by TCP. */
function expectAllPairs(pods: Pod[], families: ('v4' | 'v6')[]): void {
  for (const a of pods)
    for (const b of pods) {
      if (a === b) continue;
      for (const f of families) {
        const ip = b[f]!;
        expect(ip, `pod on node ${b.node.i} has an ${f} address`).toBeDefined();
        expect(pings(a.ns, ip, f === 'v6' ? ['-6'] : []), `ping ${a[f]} -> ${ip}`).toBe(true);
        expect(tcpReaches(a, ip), `tcp ${a[f]} -> ${ip}`).toBe(true);
      }
    }
}

const routes4 = peerRoutes;
const routes6 = peerRoutes6;

describe('vxlan dual-stack overlay (file peers)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('IPv4 underlay, dual-stack pods on 3 nodes: all pairs by IPv4 and IPv6 (ping, TCP); IPv6 DF at the pod MTU; CHECK, sync --full, teardown', () => {
    const c = new Cluster(s, 4, (i) => ({ network: NET4, subnet: sub4(i), network6: NET6, subnet6: sub6(i), peersFile: c.peersFile }));
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    c.writePeers(nodes.map((n) => ({ subnet: sub4(n.i), subnet6: sub6(n.i), ip: underlayIp(n.i) })));
    const pods = nodes.map((n) => c.addPod(n));
    expect(pods[0]!.result.ips.map((x: any) => x.address)).toEqual([expect.stringMatching(/^10\.244\.1\.\d+\/24$/), expect.stringMatching(/^fd00:10:244:1::[0-9a-f]+\/64$/)]);
    expect(pods[0]!.result.routes).toEqual([{ dst: NET4 }, { dst: NET6 }]);

    const n1 = nodes[0]!;
    expect(routes4(n1)).toEqual([sub4(2), sub4(3)]);
    expect(routes6(n1)).toEqual([sub6(2), sub6(3)]);
    const dev = ipJson<any[]>(['addr', 'show', 'dev', DEVICE], n1.ns)[0];
    expect(dev.addr_info.filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(['10.244.1.0/32', 'fd00:10:244:1::/128']);
    expect(inNode(n1, ['cat', '/proc/sys/net/ipv6/conf/all/forwarding']).stdout.trim()).toBe('1');

    expectAllPairs(pods, ['v4', 'v6']);

    // DF over IPv6: 1450 - 40 (IPv6) - 8 (ICMPv6) = 1402 bytes of payload pass, 1403 do not
    expect(pings(pods[0]!.ns, pods[2]!.v6!, ['-6', '-M', 'do', '-s', '1402'])).toBe(true);
    expect(pings(pods[0]!.ns, pods[2]!.v6!, ['-6', '-M', 'do', '-s', '1403'])).toBe(false);

    // CHECK sees a missing IPv6 neighbour; sync --full puts it back
    const env = (cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: pods[0]!.id, CNI_NETNS: pods[0]!.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN });
    const check = () => inNode(n1, [join(OUR_BIN, 'vxlan')], env('CHECK'), JSON.stringify({ ...n1.conf, prevResult: pods[0]!.result }));
    expect(check().status, check().stdout).toBe(0);
    inNode(n1, ['ip', 'neigh', 'del', 'fd00:10:244:2::', 'dev', DEVICE]);
    expect(check().json?.details ?? '').toContain('neigh replace fd00:10:244:2:: lladdr');
    const sync = tscni(n1, 'vxlan', 'sync', '--full', '--conf', n1.confFile);
    expect(JSON.parse(sync.stdout), sync.stderr).toMatchObject({ subnet: sub4(1), subnet6: sub6(1), peers: 2, changed: 1, diff: 'kernel' });
    expect(check().status).toBe(0);

    // a node that leaves takes its IPv6 route with it (the record's diff, no kernel read)
    c.writePeers(nodes.slice(0, 2).map((n) => ({ subnet: sub4(n.i), subnet6: sub6(n.i), ip: underlayIp(n.i) })));
    expect(JSON.parse(tscni(n1, 'vxlan', 'sync', '--conf', n1.confFile).stdout)).toMatchObject({ peers: 1, removed: 5, diff: 'state' });
    expect(routes6(n1)).toEqual([sub6(2)]);

    const down = tscni(n1, 'vxlan', 'teardown', '--conf', n1.confFile);
    expect(down.status, down.stderr).toBe(0);
    expect(ipJson<any[]>(['link', 'show'], n1.ns).map((l) => l.ifname)).not.toContain(DEVICE);
  });

  it('IPv6-only underlay, dual-stack pods on 3 nodes: all pairs by both families; MTU = underlay - 70, DF exact for both; accept_ra 1 becomes 2', () => {
    const c = new Cluster(s, 6, (i) => ({ network: NET4, subnet: sub4(i), network6: NET6, subnet6: sub6(i), peersFile: c.peersFile }));
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    inNode(nodes[0]!, ['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_ra=1']);
    c.writePeers(nodes.map((n) => ({ subnet: sub4(n.i), subnet6: sub6(n.i), ip6: underlayIp6(n.i) })));
    const pods = nodes.map((n) => c.addPod(n));
    const n1 = nodes[0]!;
    const dev = ipJson<any[]>(['-d', 'link', 'show', DEVICE], n1.ns)[0];
    expect(dev.mtu).toBe(1430);
    expect(dev.linkinfo.info_data).toMatchObject({ id: 1, local6: underlayIp6(1), link: 'eth0' });
    const fdb = JSON.parse(inNode(n1, ['bridge', '-json', 'fdb', 'show', 'dev', DEVICE]).stdout);
    expect(fdb.filter((f: any) => f.dst).map((f: any) => f.dst).sort()).toEqual([underlayIp6(2), underlayIp6(3)]);
    expect(inNode(n1, ['cat', '/proc/sys/net/ipv6/conf/eth0/accept_ra']).stdout.trim()).toBe('2');

    expectAllPairs(pods, ['v4', 'v6']);
    expect(pings(pods[0]!.ns, pods[1]!.v6!, ['-6', '-M', 'do', '-s', '1382'])).toBe(true);
    expect(pings(pods[0]!.ns, pods[1]!.v6!, ['-6', '-M', 'do', '-s', '1383'])).toBe(false);
    expect(pings(pods[0]!.ns, pods[1]!.v4!, ['-M', 'do', '-s', '1402'])).toBe(true);
    expect(pings(pods[0]!.ns, pods[1]!.v4!, ['-M', 'do', '-s', '1403'])).toBe(false);
  });

  it('ipMasq masquerades IPv6 pod traffic leaving the IPv6 cluster network only; teardown removes both families\' rules', () => {
    const c = new Cluster(s, 4, (i) => ({ network: NET4, subnet: sub4(i), network6: NET6, subnet6: sub6(i), peersFile: c.peersFile, ipMasq: true, isDefaultGateway: true }));
    const nodes = [1, 2].map((i) => c.addNode(i));
    // the node reaches the underlay by IPv6 too (its VTEP stays on the IPv4 address)
    for (const n of nodes) sh(['ip', '-n', n.ns, 'addr', 'add', `${underlayIp6(n.i)}/64`, 'dev', 'eth0', 'nodad']);
    c.writePeers(nodes.map((n) => ({ subnet: sub4(n.i), subnet6: sub6(n.i), ip: underlayIp(n.i) })));
    const [a, b] = nodes.map((n) => c.addPod(n));
    const masqueraded = () => {
      const out = inNode(nodes[0]!, ['ip6tables', '-t', 'nat', '-L', 'TSCNI-VXLAN-tscni.1', '-v', '-x', '-n']).stdout;
      return Number(out.split('\n').find((l) => l.includes('MASQUERADE'))!.trim().split(/\s+/)[0]);
    };
    expect(pings(a!.ns, b!.v6!, ['-6'])).toBe(true);
    expect(masqueraded()).toBe(0);
    // the underlay has no route back to the pods: only masquerading gets a reply
    expect(pings(a!.ns, 'fd00:100::fe', ['-6'])).toBe(true);
    expect(masqueraded()).toBeGreaterThan(0);
    expect(tscni(nodes[0]!, 'vxlan', 'teardown', '--conf', nodes[0]!.confFile).status).toBe(0);
    for (const save of ['iptables-save', 'ip6tables-save']) expect(inNode(nodes[0]!, [save, '-t', 'nat']).stdout).not.toContain('TSCNI-VXLAN');
  });

  it('an IPv6-only cluster network: pods get one IPv6 address; bad IPv6 peers are rejected one by one', async () => {
    const c = new Cluster(s, 4, (i) => ({ network6: NET6, subnet6: sub6(i), peersFile: c.peersFile }));
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    c.writePeers(nodes.map((n) => ({ subnet6: sub6(n.i), ip: underlayIp(n.i) })));
    const pods = nodes.map((n) => c.addPod(n));
    expect(pods.map((p) => p.result.ips.length)).toEqual([1, 1, 1]);
    expect(pods.every((p) => p.v6 && !p.v4)).toBe(true);
    expect(routes4(nodes[0]!)).toEqual([]);
    expectAllPairs(pods, ['v6']);

    const n1 = nodes[0]!;
    const watcher = background(s, n1, [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', n1.confFile]);
    await until('watcher synced', () => watcher.output().includes('"synced"'));
    c.writePeers([
      ...nodes.map((n) => ({ subnet6: sub6(n.i), ip: underlayIp(n.i) })),
      { subnet6: 'fd00:10:244:2:8000::/65', ip: underlayIp(7) },
      { subnet6: sub6(1), ip: underlayIp(8) },
      { subnet6: sub6(9), ip: underlayIp(9), ip6: 'fe80::9' },
      { subnet6: sub6(10), ip: '224.0.0.10' },
    ]);
    await until('rejections logged', () => (watcher.output().match(/rejected peer/g) ?? []).length >= 4);
    for (const reason of ['overlaps fd00:10:244:2::/64', 'claims our subnet6 fd00:10:244:1::/64', 'ip6 fe80::9 is link-local', 'ip 224.0.0.10 is multicast']) expect(watcher.output()).toContain(reason);
    expect(routes6(n1)).toEqual([sub6(2), sub6(3)]);
    watcher.kill('SIGTERM');
    await until('watcher exits', () => watcher.exitCode !== null);
  });
});

describe('vxlan dual-stack overlay (etcd)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('a mixed cluster: dual-stack and IPv4-only nodes, a lease written as flannel writes it; join, leave, etcd restart, a killed watcher', async () => {
    let etcd: EtcdServer | undefined;
    const prefix = `/${s.prefix}/network`;
    // nodes 1, 2 and 4 are dual-stack, node 3 IPv4-only
    const c = new Cluster(s, 4, (i) => ({ network: NET4, ...(i === 3 ? {} : { network6: NET6 }), etcd: { endpoints: [etcd!.url], prefix, leaseTTL: i <= 3 ? 6 : 600 } }));
    etcd = underlayEtcd(s, c.underlay);
    await etcd.start();
    const nodes = [1, 2, 3].map((i) => c.addNode(i));
    const watch = (n: Node) => background(s, n, [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', n.confFile]);
    const watchers = nodes.map(watch);
    for (const n of nodes) await until(`node ${n.i} sees 2 peers`, () => routes4(n).length === 2);
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const keys = () => etcd!.keys(`${prefix}/subnets/`).sort();
    expect(keys().filter((k) => k.includes('&'))).toHaveLength(2);
    await until('node 1 has node 2\'s IPv6 subnet', () => routes6(n1).length === 1);
    expect(routes6(n3)).toEqual([]);

    const pods = nodes.map((n) => c.addPod(n));
    expect(pods[2]!.v6).toBeUndefined();
    expectAllPairs(pods, ['v4']);
    expectAllPairs([pods[0]!, pods[1]!], ['v6']);

    // a lease exactly as flannel writes it (pkg/subnet/subnet.go MakeSubnetKey, pkg/lease/lease.go LeaseAttrs)
    const flannelKey = `${prefix}/subnets/10.244.200.0-24&fd00:10:244:c8::-64`;
    const flannelValue = { PublicIP: '192.168.100.200', PublicIPv6: 'fd00:100::c8', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:aa:00:00:00:c8' }, BackendV6Data: { VNI: 1, VtepMAC: '02:bb:00:00:00:c8' } };
    etcd.ctl(['put', flannelKey, JSON.stringify(flannelValue)]);
    await until('node 1 routes to the flannel lease', () => routes6(n1).includes('fd00:10:244:c8::/64') && routes4(n1).includes('10.244.200.0/24'));
    expect(ipJson<any[]>(['-6', 'route', 'show', 'fd00:10:244:c8::/64', 'dev', DEVICE], n1.ns)[0]).toMatchObject({ gateway: 'fd00:10:244:c8::', flags: ['onlink'] });
    expect(ipJson<any[]>(['neigh', 'show', 'fd00:10:244:c8::', 'dev', DEVICE], n1.ns)[0]).toMatchObject({ lladdr: '02:aa:00:00:00:c8', state: ['PERMANENT'] });
    await until('node 3 (IPv4-only) routes to its IPv4 half', () => routes4(n3).includes('10.244.200.0/24'));
    etcd.ctl(['del', flannelKey]);
    await until('the flannel lease leaves', () => !routes6(n1).includes('fd00:10:244:c8::/64'));

    // join and leave of a dual-stack node
    const n4 = c.addNode(4);
    const joined = tscni(n4, 'vxlan', 'sync', '--conf', n4.confFile);
    expect(joined.status, joined.stderr).toBe(0);
    const { subnet6: n4v6 } = JSON.parse(joined.stdout);
    expect(n4v6).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    await until('node 1 sees node 4 by IPv6', () => routes6(n1).includes(n4v6));
    const pod4 = c.addPod(n4);
    expect(pings(pods[0]!.ns, pod4.v6!, ['-6'])).toBe(true);
    expect(tscni(n4, 'vxlan', 'teardown', '--conf', n4.confFile).status).toBe(0);
    await until('node 1 forgets node 4', () => !routes6(n1).includes(n4v6));

    // etcd restart: IPv6 routes stay, and the watchers follow the next change
    const before = [routes4(n1), routes6(n1)];
    await etcd.stop();
    expect([routes4(n1), routes6(n1)]).toEqual(before);
    expect(pings(pods[0]!.ns, pods[1]!.v6!, ['-6'])).toBe(true);
    await etcd.start();

    // a watcher SIGKILLed and started again keeps and re-reads the IPv6 routes
    watchers[0]!.kill('SIGKILL');
    await until('watcher 1 dead', () => watchers[0]!.exitCode !== null || watchers[0]!.signalCode !== null);
    expect(routes6(n1)).toEqual(before[1]);
    const again = watch(n1);
    await until('the new watcher watches', () => again.output().includes('watching etcd'));
    expect(routes6(n1)).toEqual(before[1]);
    const state = JSON.parse(readFileSync(join(n2.dir, 'state', `${DEVICE}.json`), 'utf8'));
    expect(state.subnet6).toBe(before[1]![0]);
    expect(pings(pods[0]!.ns, pods[1]!.v6!, ['-6'])).toBe(true);

    for (const w of [again, watchers[1]!, watchers[2]!]) w.kill('SIGTERM');
    for (const w of [again, watchers[1]!, watchers[2]!]) await until('watcher exits', () => w.exitCode !== null);
  });
});
