import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { jsonOrUndefined } from './cni.ts';
import { OUR_BIN } from './paths.ts';
import { sh, tryRun, type Scope } from './scope.ts';
import { DEVICE, underlay, underlayNode } from './vxlan-node.ts';

/**
 * Simulated vxlan nodes run by the built binary: each node is a namespace with `eth0` on an
 * underlay bridge (vxlan-node.ts); pods are namespaces attached by the plugin, run inside the
 * node's namespace. What vxlan-overlay and vxlan-dualstack share.
 */

/** A simulated vxlan node: its namespace, its own directory, its plugin config and that config as a conflist file. */
export interface VxlanNode {
  i: number;
  ns: string;
  dir: string;
  confFile: string;
  conf: Record<string, unknown>;
}

/** A pod the plugin attached on `node`, with the ADD result. */
export interface VxlanPod {
  ns: string;
  path: string;
  id: string;
  node: VxlanNode;
  result: any;
}

export interface NodeRun {
  status: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

export const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(process.env.TSCNI_LOG ? { TSCNI_LOG: process.env.TSCNI_LOG } : {}) });

/** Runs argv inside a node's namespace; `json` is its stdout parsed, if it parses. */
export function inNode(node: VxlanNode, argv: string[], env: Record<string, string> = {}, input?: string): NodeRun {
  const r = spawnSync('ip', ['netns', 'exec', node.ns, ...argv], { input, env: { ...baseEnv(), ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json: jsonOrUndefined(r.stdout ?? '') };
}

export const tscni = (node: VxlanNode, ...args: string[]) => inNode(node, [join(OUR_BIN, 'tscni'), ...args]);

/** A background process inside a node, its output collected, killed on dispose. */
export function background(s: Scope, node: VxlanNode, argv: string[]): ChildProcess & { output: () => string } {
  const child = spawn('ip', ['netns', 'exec', node.ns, ...argv], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (b) => (output += b));
  child.stderr!.on('data', (b) => (output += b));
  s.defer(() => child.exitCode === null && child.kill('SIGKILL'));
  return Object.assign(child, { output: () => output });
}

const gatewayRoutes = (node: VxlanNode, family: string[]) => {
  const r = tryRun(['ip', '-n', node.ns, ...family, '-json', 'route', 'show', 'dev', DEVICE]);
  return r.status === 0 ? (JSON.parse(r.stdout) as { dst: string; gateway?: string }[]).filter((x) => x.gateway).map((x) => x.dst).sort() : [];
};
/** The IPv4 subnets the node routes through the vxlan device to a peer (none before it has one). */
export const peerRoutes = (node: VxlanNode) => gatewayRoutes(node, []);
export const peerRoutes6 = (node: VxlanNode) => gatewayRoutes(node, ['-6']);

/** Replaces a peers file at once (rename), as a watcher must see it. */
export function writePeersFile(path: string, entries: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(entries));
  sh(['mv', `${path}.tmp`, path]);
}

/**
 * Nodes on one underlay, each with a directory under the cluster's and a vxlan config: the common
 * fields (name `overlay`, state and IPAM dirs in the node's directory) and `conf(i, cluster)`.
 */
export class VxlanCluster {
  readonly underlay: string;
  readonly nodes: VxlanNode[] = [];
  readonly dir: string;
  readonly peersFile: string;

  constructor(
    protected readonly s: Scope,
    private readonly conf: (i: number, c: VxlanCluster) => Record<string, unknown>,
    private readonly family: 4 | 6 = 4,
  ) {
    this.dir = s.tmpdir();
    this.peersFile = join(this.dir, 'peers.json');
    this.underlay = underlay(s);
  }

  addNode(i: number): VxlanNode {
    const ns = underlayNode(this.s, this.underlay, i, this.family);
    const dir = join(this.dir, `node${i}`);
    mkdirSync(dir);
    const conf = { cniVersion: '1.0.0', name: 'overlay', type: 'vxlan', stateDir: join(dir, 'state'), ipam: { dataDir: join(dir, 'ipam') }, ...this.conf(i, this) };
    const confFile = join(dir, 'overlay.conflist');
    writeFileSync(confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'overlay', plugins: [{ ...conf, name: undefined, cniVersion: undefined }] }));
    const node = { i, ns, dir, confFile, conf };
    this.nodes.push(node);
    return node;
  }

  writePeers(entries: unknown): void {
    writePeersFile(this.peersFile, entries);
  }

  /** A new pod namespace attached by the plugin's ADD on `node` (which must succeed). */
  attachPod(node: VxlanNode): VxlanPod {
    const ns = this.s.netns('p');
    const id = this.s.name('c');
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
    const r = inNode(node, [join(OUR_BIN, 'vxlan')], env, JSON.stringify(node.conf));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    return { ns: ns.name, path: ns.path, id, node, result: r.json };
  }
}
