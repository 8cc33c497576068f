import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryRun } from '../../support/scope.ts';

export interface CriOptions {
  pluginDir: string;
  confDir: string;
  sandboxImage: string;
}

/**
 * A private containerd 1.6: its own root, state, sockets and runc root under `dir`, started by the
 * test and stopped after. With `cri`, the CRI plugin runs with bin_dir/conf_dir set to ours;
 * without, the CRI plugin is disabled (ctr does CNI itself).
 */
export class Containerd {
  readonly socket: string;
  private child: ChildProcess | undefined;

  constructor(
    readonly dir: string,
    readonly cri?: CriOptions,
  ) {
    this.socket = join(dir, 'containerd.sock');
  }

  get runcRoot(): string {
    return join(this.dir, 'runc');
  }

  private config(): string {
    const common = `version = 2
root = "${join(this.dir, 'root')}"
state = "${join(this.dir, 'state')}"
[grpc]
  address = "${this.socket}"
[ttrpc]
  address = "${this.socket}.ttrpc"
`;
    if (!this.cri) return common + `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n`;
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    return (
      common +
      `[${cri}]
  sandbox_image = "${this.cri.sandboxImage}"
  # this VM's containers may not lower oom_score_adj below the test runner's
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[${cri}.containerd]
  snapshotter = "native"
  default_runtime_name = "runc"
[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[${cri}.containerd.runtimes.runc.options]
  BinaryName = "runc"
  Root = "${this.runcRoot}"
[${cri}.cni]
  bin_dir = "${this.cri.pluginDir}"
  conf_dir = "${this.cri.confDir}"
  max_conf_num = 1
`
    );
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const configFile = join(this.dir, 'config.toml');
    writeFileSync(configFile, this.config());
    const log = openSync(join(this.dir, 'containerd.log'), 'a');
    this.child = spawn('containerd', ['--config', configFile], { stdio: ['ignore', log, log] });
    for (let i = 0; i < 200; i++) {
      if (this.child.exitCode !== null) break;
      if (existsSync(this.socket) && tryRun(['ctr', '--address', this.socket, 'version']).status === 0) return;
      await sleep(100);
    }
    throw new Error(`containerd did not start; see ${join(this.dir, 'containerd.log')}`);
  }

  /** `ctr --address SOCKET ARGS` in namespace `ns`; throws unless `allowFailure`. */
  ctr(ns: string, args: string[], opts: { allowFailure?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ctr', ['--address', this.socket, '--namespace', ns, ...args], { encoding: 'utf8', timeout: 120_000 });
    const out = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (!opts.allowFailure && r.status !== 0) throw new Error(`ctr ${args.join(' ')} failed (${r.status}): ${out.stderr.trim()}`);
    return out;
  }

  /** Kills every task left in `ns` and removes its containers and images (best effort, for teardown). */
  clean(ns: string): void {
    for (const line of this.ctr(ns, ['task', 'ls', '--quiet'], { allowFailure: true }).stdout.split('\n').filter(Boolean)) {
      this.ctr(ns, ['task', 'kill', '--signal', 'SIGKILL', line], { allowFailure: true });
      this.ctr(ns, ['task', 'delete', '--force', line], { allowFailure: true });
    }
    for (const line of this.ctr(ns, ['container', 'ls', '--quiet'], { allowFailure: true }).stdout.split('\n').filter(Boolean)) {
      this.ctr(ns, ['container', 'delete', line], { allowFailure: true });
    }
    for (const line of this.ctr(ns, ['image', 'ls', '--quiet'], { allowFailure: true }).stdout.split('\n').filter(Boolean)) {
      this.ctr(ns, ['image', 'delete', '--sync', line], { allowFailure: true });
    }
  }

  /** Stops containerd and any shim of ours still alive (found by our socket path, killed by pid). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    for (const pid of tryRun(['pgrep', '-f', '--', `-address ${this.socket}`]).stdout.split('\n').filter(Boolean)) {
      tryRun(['kill', '-KILL', pid]);
    }
  }
}

/**
 * Mount commands that make `source` appear at `target` in a private mount namespace. When the target
 * does not exist on the host, a tmpfs over its nearest existing parent makes room without creating
 * anything on the host (refused for top-level system dirs, which the namespace still needs).
 */
export function placeAt(target: string, source: string): string[] {
  if (existsSync(target)) return [`mount --bind ${source} ${target}`];
  let parent = dirname(target);
  while (!existsSync(parent)) parent = dirname(parent);
  if (['/', '/etc', '/usr', '/var', '/run', '/tmp'].includes(parent)) throw new Error(`cannot place ${target}: ${parent} would have to be hidden`);
  return [`mount -t tmpfs tmpfs ${parent}`, `mkdir -p ${target}`, `mount --bind ${source} ${target}`];
}
