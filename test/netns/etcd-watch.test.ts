import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd-server.ts';
import { OUR_BIN, ROOT } from '../support/paths.ts';
import { Scope, tryRun } from '../support/scope.ts';
import { until as untilWithin } from '../support/until.ts';
import { DEVICE, loneNode, peer } from '../support/vxlan-node.ts';
import { vtepMac } from '../../plugins/vxlan/peers.ts';

/**
 * The vxlan watcher (`tscni vxlan sync --watch`) against a real etcd behind a proxy that breaks the
 * watch stream (test/support/etcd-proxy.mjs): etcd, the proxy and the watcher share one namespace
 * and talk over its loopback.
 */

const until = (what: string, cond: () => boolean, ms = 30_000) => untilWithin(what, cond, ms);

/** A process in namespace `ns`, its output collected, killed on dispose. */
function start(s: Scope, ns: string, argv: string[]): ChildProcess & { output: () => string } {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (b) => (output += b));
  child.stderr!.on('data', (b) => (output += b));
  s.defer(() => child.exitCode === null && child.kill('SIGKILL'));
  return Object.assign(child, { output: () => output });
}

class World {
  readonly ns: string;
  readonly prefix: string;
  readonly confFile: string;
  private readonly etcd: EtcdServer;
  private readonly proxyPort: number;
  private proxy!: ReturnType<typeof start>;

  constructor(private readonly s: Scope) {
    this.ns = loneNode(s, 'k');
    this.etcd = new EtcdServer(s, this.ns);
    this.proxyPort = this.etcd.port + 2;
    this.prefix = `/${s.name('net')}`;
    const dir = s.tmpdir();
    this.confFile = join(dir, 'overlay.conflist');
    const plugin = { type: 'vxlan', network: '10.0.0.0/8', stateDir: join(dir, 'state'), ipam: { dataDir: join(dir, 'ipam') }, etcd: { endpoints: [`http://127.0.0.1:${this.proxyPort}`], prefix: this.prefix, leaseTTL: 600 } };
    writeFileSync(this.confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'overlay', plugins: [plugin] }));
  }

  async start(): Promise<void> {
    await this.etcd.start();
    this.proxy = start(this.s, this.ns, [process.execPath, join(ROOT, 'test/support/etcd-proxy.mjs'), String(this.proxyPort), String(this.etcd.port)]);
    await until('proxy listening', () => this.proxy.output().includes('listening'));
  }

  etcdctl(args: string[], input?: string): string {
    return this.etcd.ctl(args, input);
  }

  proxyOutput = () => this.proxy.output();

  /** Tells the proxy what to break next and waits until it did. */
  async breakWatch(command: 'garbage' | 'null' | 'cut' | 'hold' | 'release', trigger: () => void = () => {}): Promise<void> {
    const count = () => this.proxy.output().split(`did ${command}`).length;
    const before = count();
    this.proxy.stdin!.write(`${command}\n`);
    trigger();
    await until(`proxy: ${command}`, () => count() > before);
  }

  /** Puts peers as flannel-style leases, 100 per transaction; `pad` bytes make each value bigger. */
  putPeers(ns: number[], pad = 0): void {
    for (let i = 0; i < ns.length; i += 100) {
      const puts = ns.slice(i, i + 100).map((n) => {
        const p = peer(n);
        const value = JSON.stringify({ PublicIP: p.ip, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: vtepMac(1, p.ip) }, ...(pad ? { Pad: 'x'.repeat(pad) } : {}) });
        return `put ${this.key(n)} ${JSON.stringify(value)}`;
      });
      this.etcdctl(['txn'], `\n${puts.join('\n')}\n\n\n`);
    }
  }

  key = (n: number) => `${this.prefix}/subnets/${peer(n).subnet.replace('/', '-')}`;

  /** The subnets routed through the vxlan device. */
  routes(): string[] {
    const r = tryRun(['ip', '-n', this.ns, '-json', 'route', 'show', 'dev', DEVICE]);
    if (r.status !== 0) return []; // no device yet
    return (JSON.parse(r.stdout || '[]') as { dst: string }[]).map((r) => r.dst).filter((d) => d.startsWith('10.')).sort();
  }

  watcher() {
    return start(this.s, this.ns, [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--watch', '--conf', this.confFile]);
  }
}

const subnets = (ns: number[]) => ns.map((n) => peer(n).subnet).sort();
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
/** Whether the watcher holds exactly these peers (its own /24 is not among the routes it adds). */
const holds = (w: World, ns: number[]) => JSON.stringify(w.routes()) === JSON.stringify(subnets(ns));

/** A started world with peers 1 and 2 in etcd and a watcher that holds them. */
async function watchingPeers1And2(s: Scope) {
  const w = new World(s);
  await w.start();
  w.putPeers([1, 2]);
  const watcher = w.watcher();
  await until('the first peers', () => holds(w, [1, 2]));
  return { w, watcher };
}

describe('etcd watch robustness (real etcd behind a breaking proxy)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('a corrupted line, a null line and a cut stream: the watcher logs, resumes and converges', async () => {
    const { w, watcher } = await watchingPeers1And2(s);

    await w.breakWatch('garbage', () => w.putPeers([3]));
    await until('peer 3 after a garbage line', () => holds(w, [1, 2, 3]));
    expect(watcher.output()).toContain('unreadable watch message');

    await w.breakWatch('null', () => w.putPeers([4]));
    await until('peer 4 after a null line', () => holds(w, [1, 2, 3, 4]));
    expect(watcher.output()).toContain('not a watch message: null');

    await w.breakWatch('cut', () => w.etcdctl(['del', w.key(1)]));
    await until('peer 1 removed after a cut', () => holds(w, [2, 3, 4]));
    expect(watcher.output().match(/etcd watch interrupted; resuming/g)).toHaveLength(3);
    expect(watcher.exitCode).toBeNull();

    watcher.kill('SIGTERM');
    await until('watcher exits', () => watcher.exitCode !== null);
    expect(watcher.exitCode).toBe(0);
  });

  it('a revision compacted while the watcher was away: it reads the prefix again', async () => {
    const { w, watcher } = await watchingPeers1And2(s);
    await until('the watch stream is open', () => w.proxyOutput().includes('watch open'));

    await w.breakWatch('hold');
    await until('the watcher noticed', () => watcher.output().includes('etcd watch interrupted; resuming'));
    w.putPeers([3]);
    w.etcdctl(['del', w.key(1)]);
    const revision = JSON.parse(w.etcdctl(['get', '-w', 'json', w.key(3)])).header.revision;
    w.etcdctl(['compact', String(revision)]);
    await w.breakWatch('release');

    await until('converged after the compaction', () => holds(w, [2, 3]));
    expect(watcher.output()).toContain('etcd compacted the watched revisions');
  });

  it('reads a prefix larger than one page: 1,200 leases of 3 KB each', async () => {
    const w = new World(s);
    await w.start();
    const all = range(1, 1201);
    w.putPeers(all, 3000);
    const watcher = w.watcher();
    await until('1,200 peers', () => w.routes().length === 1200, 120_000);
    expect(holds(w, all)).toBe(true);
    expect(watcher.output()).not.toContain('larger than');
  }, 180_000);
});
