import { spawn, type ChildProcess } from 'node:child_process';
import { sh, tryRun, type Scope } from './scope.ts';
import { until } from './until.ts';

/**
 * A single-member etcd in namespace `ns`, serving clients on `host` (127.0.0.1 unless given) at a
 * random port; its peer port (the next one) stays on the namespace's loopback. The data dir comes
 * from the Scope and outlives stop(), so a restart keeps the keys; the process is killed on dispose.
 */
export class EtcdServer {
  readonly port = 20000 + Math.floor(Math.random() * 20000);
  readonly url: string;
  private readonly dataDir: string;
  private proc: ChildProcess | undefined;

  constructor(
    s: Scope,
    readonly ns: string,
    host = '127.0.0.1',
  ) {
    this.url = `http://${host}:${this.port}`;
    this.dataDir = s.tmpdir();
    s.defer(() => this.proc?.exitCode === null && this.proc.kill('SIGKILL'));
  }

  /** Starts etcd and waits until it answers a health check. */
  async start(): Promise<void> {
    const peer = `http://127.0.0.1:${this.port + 1}`;
    this.proc = spawn('ip', ['netns', 'exec', this.ns, 'etcd', '--name', 'default', '--data-dir', this.dataDir, '--listen-client-urls', this.url, '--advertise-client-urls', this.url, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`], { stdio: 'ignore' });
    await until('etcd healthy', () => tryRun(['ip', 'netns', 'exec', this.ns, 'etcdctl', '--endpoints', this.url, 'endpoint', 'health']).status === 0, 30_000);
  }

  /** SIGTERM, then SIGKILL if it has not exited in time. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    await until('etcd stopped', () => p.exitCode !== null || p.signalCode !== null).catch(() => p.kill('SIGKILL'));
  }

  /** etcdctl against this server, run in its namespace; `input` goes to stdin (`txn`). */
  ctl(args: string[], input?: string): string {
    return sh(['ip', 'netns', 'exec', this.ns, 'etcdctl', '--endpoints', this.url, ...args], input);
  }

  keys(prefix: string): string[] {
    return this.ctl(['get', '--prefix', '--keys-only', prefix]).split('\n').filter(Boolean);
  }
}
