import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonOrUndefined, writeConflist } from './cni.ts';
import { CNITOOL, OUR_BIN } from './paths.ts';
import { runAsync, type AsyncRun } from './run-async.ts';
import type { Scope } from './scope.ts';
import { sh } from './scope.ts';

/**
 * A "node" network namespace for netpol tests: a bridge (isGateway, default route in the pods),
 * host-local on `subnet`, the netpol plugin chained after it, an objects directory, and pods
 * attached by cnitool inside the node namespace as a runtime would. Every name comes from the
 * Scope; everything is removed with it. Traffic stays between namespaces the test made.
 */
export interface NodePod {
  name: string;
  /** The pod's own network namespace. */
  netns: string;
  ip: string;
  id: string;
}

export interface NetpolNodeOptions {
  subnet: string;
  nodeName?: string;
  /** netpol's podSubnets (default [subnet]); [] leaves them out. */
  podSubnets?: string[];
}

export class NetpolNode {
  readonly node: string;
  readonly dir: string;
  readonly objects: string;
  readonly stateDir: string;
  readonly conflist: string;
  readonly bridge: string;
  readonly nodeName: string;
  readonly pods: Record<string, NodePod> = {};

  constructor(
    private readonly s: Scope,
    readonly opts: NetpolNodeOptions,
  ) {
    this.node = s.netns('nd').name;
    this.dir = s.tmpdir();
    this.objects = join(this.dir, 'objects');
    this.stateDir = join(this.dir, 'state');
    this.bridge = s.name('br');
    this.nodeName = opts.nodeName ?? 'node1';
    mkdirSync(this.objects, { recursive: true });
    const podSubnets = opts.podSubnets ?? [opts.subnet];
    this.conflist = writeConflist(join(this.dir, 'conf'), {
      cniVersion: '1.0.0',
      name: 'np',
      plugins: [
        { type: 'bridge', bridge: this.bridge, isGateway: true, ipam: { type: 'host-local', dataDir: join(this.dir, 'ipam'), ranges: [[{ subnet: opts.subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'netpol', objects: this.objects, stateDir: this.stateDir, nodeName: this.nodeName, ...(podSubnets.length ? { podSubnets } : {}) },
      ],
    });
  }

  /** Writes one manifest file into the objects directory. */
  write(file: string, text: string): void {
    writeFileSync(join(this.objects, file), text);
  }

  /** argv inside the node namespace, without blocking the test (probers keep running). */
  run(argv: readonly string[], env: Record<string, string> = {}, input?: string): Promise<AsyncRun> {
    return runAsync(['ip', 'netns', 'exec', this.node, ...argv], { env: { PATH: process.env.PATH!, ...env }, input });
  }

  /** cnitool VERB for a pod in its own namespace; `args` are more CNI_ARGS pairs (IP=…, MAC=…). */
  async cni(verb: 'add' | 'check' | 'del', pod: { name: string; k8sNs: string; netns: string; id: string; args?: string }) {
    const r = await this.run([CNITOOL, verb, 'np', `/run/netns/${pod.netns}`], {
      NETCONFPATH: join(this.dir, 'conf'),
      CNI_PATH: OUR_BIN,
      CNI_CACHEDIR: join(this.dir, 'cache'),
      CNI_IFNAME: 'eth0',
      CNI_CONTAINERID: pod.id,
      CNI_ARGS: `K8S_POD_NAMESPACE=${pod.k8sNs};K8S_POD_NAME=${pod.name}${pod.args ? `;${pod.args}` : ''}`,
    });
    return { ...r, json: jsonOrUndefined(r.stdout) };
  }

  /** A pod attached through the whole chain, with a TCP server on 8080 answering "ok" (started before the ADD). */
  async addPod(name: string, k8sNs: string, opts: { args?: string; netns?: string; id?: string } = {}): Promise<NodePod> {
    const netns = opts.netns ?? this.s.netns('p').name;
    if (!opts.netns) serve(this.s, netns, 8080);
    const id = opts.id ?? `c-${name}`;
    const r = await this.cni('add', { name, k8sNs, netns, id, args: opts.args });
    if (r.status !== 0) throw new Error(`ADD ${k8sNs}/${name}: ${r.stderr}`);
    const ip = (r.json.ips[0].address as string).split('/')[0]!;
    if (!opts.netns) await listening(netns);
    this.pods[name] = { name, netns, ip, id };
    return this.pods[name]!;
  }

  async policy(...args: string[]): Promise<AsyncRun> {
    return this.run([join(OUR_BIN, 'tscni'), 'policy', ...args, '--conf', this.conflist]);
  }
}

/**
 * argv in `netns` as a process group of its own, killed whole with the Scope: `ip netns exec` may
 * fork, and socat's per-connection children and shell pipelines outlive a kill of the first pid.
 */
export function spawnIn(s: Scope, netns: string, argv: readonly string[], stdio: StdioOptions = 'ignore'): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio, detached: true });
  s.defer(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return child;
}

/** A TCP server on `port` in `netns` answering "ok"; it listens before any interface exists. */
export function serve(s: Scope, netns: string, port: number): void {
  spawnIn(s, netns, ['socat', `TCP-LISTEN:${port},reuseaddr,fork`, 'SYSTEM:echo ok']);
}

/** One TCP connect from a namespace to ip:port with a 1 s timeout; true when the server answered. */
export async function connects(netns: string, ip: string, port = 8080): Promise<boolean> {
  const r = await runAsync(['ip', 'netns', 'exec', netns, 'socat', '-T1', '-', `TCP:${ip}:${port},connect-timeout=1`]);
  return r.status === 0 && r.stdout.includes('ok');
}

/** Waits until the server in `netns` listens on `port` (socat was started asynchronously). */
export async function listening(netns: string, port = 8080): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (sh(['ip', 'netns', 'exec', netns, 'ss', '-Hltn', `sport = :${port}`]).trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on ${port} in ${netns}`);
}
