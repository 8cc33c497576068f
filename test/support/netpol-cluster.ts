// The upstream netpol e2e model (namespaces x, y, z; pods a, b, c) as real network namespaces: pods
// attached by cnitool through a node's conflist (bridge or vxlan, then netpol) inside namespaces
// that play the nodes, one agent process per pod (netpol-agent.mjs) serving TCP/UDP 80 and 81 and
// probing on request, and policy put into each node's kernel the way an operator does it: manifests
// in the node's objects directory, then `tscni policy sync`. Everything it makes belongs to a Scope.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import type { Protocol } from '../../lib/netpol/objects.ts';
import { cnitool, jsonOrUndefined, writeConflist } from './cni.ts';
import { ALL_PODS, gridOf, modelObjects, NAMESPACES, PODS, type ModelOptions, type Stack } from './netpol-model.ts';
import { OUR_BIN, ROOT } from './paths.ts';
import { runAsync } from './run-async.ts';
import type { Scope } from './scope.ts';
import { underlay, underlayIp, underlayNode } from './vxlan-node.ts';

export type Family = 4 | 6;

export interface NetpolNode {
  /** spec.nodeName of its pods, and the netpol plugin's nodeName. */
  name: string;
  netns: string;
  /** The netpol plugin's `objects` directory: the manifests as the API would show them. */
  objects: string;
  /** The conflist (attachment plugin, then netpol) that cnitool runs and `tscni policy` reads. */
  conflist: string;
  /** cnitool's NETCONFPATH (the conflist's directory) and CNI_CACHEDIR. */
  confDir: string;
  cacheDir: string;
}

export interface NetpolPod {
  /** `ns/pod` of the model. */
  key: string;
  netns: string;
  node: NetpolNode;
  ips: string[];
  agent: Agent;
}

/** One matrix to measure: every pair of pods on this port, protocol and address family. */
export interface ProbeSpec {
  port: number;
  protocol: Protocol;
  family: Family;
}

const AGENT = join(ROOT, 'test', 'support', 'netpol-agent.mjs');
const NETWORK = 'netpol';
const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(process.env.TSCNI_LOG ? { TSCNI_LOG: process.env.TSCNI_LOG } : {}) });
/** How long an SCTP INIT may take to reach its target's counter after nmap sent it. */
const SCTP_SETTLE_MS = 150;

/**
 * A node: its namespace, its own objects directory and netpol state dir, and a conflist chaining
 * `attachment` (the bridge or vxlan plugin's entry) with netpol guarding `podSubnets`.
 */
function makeNode(s: Scope, name: string, netns: string, attachment: (dir: string) => Record<string, unknown>, podSubnets: string[]): NetpolNode {
  const dir = s.tmpdir();
  const objects = join(dir, 'objects');
  const confDir = join(dir, 'conf');
  mkdirSync(objects);
  const netpol = { type: 'netpol', objects, stateDir: join(dir, 'netpol'), nodeName: name, podSubnets };
  // cnitool's libcni speaks spec versions up to 1.0.0
  const conflist = writeConflist(confDir, { cniVersion: '1.0.0', name: NETWORK, plugins: [attachment(dir), netpol] });
  return { name, netns, objects, conflist, confDir, cacheDir: join(dir, 'cache') };
}

/** Replaces a file by rename, so a reader never sees half of it. */
function writeManifest(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, `.${name}.tmp`), text);
  renameSync(join(dir, `.${name}.tmp`), join(dir, name));
}

/**
 * The node's objects directory holding exactly `objects`, in both forms the directory source
 * reads: Namespaces and NetworkPolicies as multi-document YAML, Pods as one JSON `kind: List`.
 */
function writeObjects(dir: string, objects: unknown[]): void {
  const kind = (o: unknown) => (o as { kind: string }).kind;
  const files = new Map<string, string>();
  const yamlStream = (docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');
  files.set('namespaces.yaml', yamlStream(objects.filter((o) => kind(o) === 'Namespace')));
  files.set('pods.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects.filter((o) => kind(o) === 'Pod') }, null, 1));
  const policies = objects.filter((o) => kind(o) === 'NetworkPolicy');
  if (policies.length) files.set('policies.yaml', yamlStream(policies));
  const unknown = objects.filter((o) => !['Namespace', 'Pod', 'NetworkPolicy'].includes(kind(o)));
  if (unknown.length) throw new Error(`writeObjects: no file for kind ${kind(unknown[0])}`);
  for (const name of readdirSync(dir)) if (!files.has(name)) rmSync(join(dir, name));
  for (const [name, text] of files) writeManifest(dir, name, text);
}

/**
 * The apply step, the one place the suite puts policy into a node's kernel: the objects written
 * to the node's directory, then `tscni policy sync --conf` in the node's namespace (its diff
 * against what it applied last). An object sync rejects fails the step: every object the cases
 * write is valid.
 */
export async function applyObjects(node: NetpolNode, objects: unknown[]): Promise<void> {
  writeObjects(node.objects, objects);
  const argv = ['ip', 'netns', 'exec', node.netns, join(OUR_BIN, 'tscni'), 'policy', 'sync', '--conf', node.conflist, '--json'];
  const r = await runAsync(argv, { env: baseEnv() });
  if (r.status !== 0) throw new Error(`tscni policy sync on node ${node.name} failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`);
  const summary = jsonOrUndefined(r.stdout) as { rejected?: string[]; applied?: string } | undefined;
  if (!summary) throw new Error(`tscni policy sync on node ${node.name} printed no summary: ${r.stdout}${r.stderr}`);
  if (summary.rejected?.length) throw new Error(`tscni policy sync on node ${node.name} rejected objects:\n${summary.rejected.join('\n')}`);
  // the first pod's ADD synced (no index yet), so the table and applied.json exist from then on: a
  // full replace means the kernel refused sync's diff (sync falls back with only a warning)
  if (summary.applied === 'full') throw new Error(`tscni policy sync on node ${node.name} replaced the table instead of diffing: ${r.stderr}`);
}

/** A pod's agent: JSON-line requests, answers matched by id. */
export class Agent {
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  readonly ready: Promise<void>;
  private stderr = '';
  private exited: Error | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.stderr!.on('data', (b: Buffer) => (this.stderr += b));
    child.stdin!.on('error', () => {}); // an agent that died closes its stdin under a request; readLoop reports it
    this.ready = this.readLoop();
  }

  /** Resolves on the agent's `ready` line; keeps routing answers afterwards. */
  private readLoop(): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      const loop = async () => {
        for await (const line of createInterface({ input: this.child.stdout! })) {
          const msg = jsonOrUndefined(line);
          if (msg?.ready) resolveReady();
          else if (msg && this.pending.has(msg.id)) {
            const p = this.pending.get(msg.id)!;
            this.pending.delete(msg.id);
            if (msg.error) p.reject(new Error(`agent ${this.label}: ${msg.error}`));
            else p.resolve(msg);
          } else this.failAll(new Error(`agent ${this.label}: unexpected line ${line.slice(0, 200)}`));
        }
        this.exited = new Error(`agent ${this.label} exited: ${this.stderr.slice(0, 2000)}`);
        rejectReady(this.exited);
        this.failAll(this.exited);
      };
      loop().catch(rejectReady);
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  request(op: string, body: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(this.exited);
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function startAgent(s: Scope, netns: string, label: string): Agent {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT], { env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const agent = new Agent(child, label);
  s.defer(() => agent.kill());
  return agent;
}

/**
 * ADDs a pod as a runtime on that node would: cnitool inside the node's namespace runs the node's
 * conflist (attachment plugin, then netpol) with the pod's Kubernetes identity in CNI_ARGS.
 */
function chainAdd(node: NetpolNode, key: string, pod: { path: string; id: string }): { ips: { address: string }[] } {
  const [namespace, name] = key.split('/') as [string, string];
  const args = `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`;
  const r = cnitool('add', NETWORK, pod.path, { confDir: node.confDir, pluginDir: OUR_BIN, cacheDir: node.cacheDir, ifname: 'eth0', args, containerId: pod.id, netns: node.netns });
  if (r.status !== 0) throw new Error(`ADD of ${key} on ${node.name} failed: ${r.stdout}${r.stderr}`);
  return r.json;
}

const familyOf = (ip: string): Family => (ip.includes(':') ? 6 : 4);

export class NetpolCluster {
  readonly pods = new Map<string, NetpolPod>();

  private constructor(
    readonly nodes: NetpolNode[],
    readonly families: Family[],
  ) {}

  /** All 9 pods on one node's bridge, with IPv4, IPv6 or both. */
  static async oneNode(s: Scope, stack: Stack): Promise<NetpolCluster> {
    const families: Family[] = stack === 'dual' ? [4, 6] : [stack];
    const subnets = families.map((f) => (f === 4 ? '10.0.0.0/16' : 'fd00::/64'));
    const bridge = (dir: string) => ({ type: 'bridge', bridge: 'cni0', isGateway: true, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: subnets.map((subnet) => [{ subnet }]) } });
    const node = makeNode(s, 'n1', s.netns('k').name, bridge, subnets);
    const c = new NetpolCluster([node], families);
    await c.attach(s, () => node);
    return c;
  }

  /** The 9 pods spread over 3 nodes joined by the vxlan plugin's overlay (IPv4). */
  static async threeVxlanNodes(s: Scope): Promise<NetpolCluster> {
    const under = underlay(s);
    const subnetOf = (i: number) => `10.0.${i}.0/24`;
    const peers = [1, 2, 3].map((i) => ({ subnet: subnetOf(i), ip: underlayIp(i) }));
    const vxlan = (i: number) => (dir: string) => ({ type: 'vxlan', network: '10.0.0.0/16', subnet: subnetOf(i), peers, stateDir: join(dir, 'vxlan'), ipam: { dataDir: join(dir, 'ipam') } });
    const nodes = [1, 2, 3].map((i) => makeNode(s, `n${i}`, underlayNode(s, under, i), vxlan(i), [subnetOf(i)]));
    const c = new NetpolCluster(nodes, [4]);
    await c.attach(s, (ns, pod) => nodes[(ns.charCodeAt(0) + pod.charCodeAt(0)) % 3]!);
    return c;
  }

  /**
   * ADDs every pod on its node, then starts the agents and waits until all of them serve. As in a
   * cluster, the Namespace and Pod objects exist before the ADDs (podIPs still empty), so ADD
   * takes the pod's labels from the index the first ADD's sync wrote.
   */
  private async attach(s: Scope, nodeOf: (ns: string, pod: string) => NetpolNode): Promise<void> {
    const scheduled = modelObjects({ ipsOf: () => [], nodeOf: (ns, pod) => nodeOf(ns, pod).name });
    for (const node of this.nodes) writeObjects(node.objects, scheduled);
    for (const ns of NAMESPACES) {
      for (const name of PODS) {
        const key = `${ns}/${name}`;
        const node = nodeOf(ns, name);
        const netns = s.netns('p');
        const result = chainAdd(node, key, { path: netns.path, id: s.name('c') });
        const ips = result.ips.map((ip) => ip.address.split('/')[0]!);
        this.pods.set(key, { key, netns: netns.name, node, ips, agent: startAgent(s, netns.name, key) });
      }
    }
    await Promise.all([...this.pods.values()].map((p) => p.agent.ready));
  }

  /** The pod address of one family (what an ipBlock case names). */
  addrOf(family: Family): (pod: string) => string {
    return (pod) => this.pods.get(pod)!.ips.find((ip) => familyOf(ip) === family)!;
  }

  /** The model with these pods' real addresses and nodes, plus `policies`, in every node's kernel. */
  async apply(policies: unknown[], model: ModelOptions = {}): Promise<void> {
    const objects = [...modelObjects({ ...model, ipsOf: (ns, pod) => this.pods.get(`${ns}/${pod}`)!.ips, nodeOf: (ns, pod) => this.pods.get(`${ns}/${pod}`)!.node.name }), ...policies];
    const runs = await Promise.allSettled(this.nodes.map((node) => applyObjects(node, objects)));
    const failed = runs.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Probes every pair for every spec at once; one grid (as Reachability prints it) per spec. */
  async probe(specs: ProbeSpec[]): Promise<string[]> {
    const sockets = specs.filter((p) => p.protocol !== 'SCTP');
    const [socketJudges, sctpJudges] = await Promise.all([this.probeSockets(sockets), this.probeSctp(specs.filter((p) => p.protocol === 'SCTP'))]);
    return specs.map((spec) => gridOf((socketJudges.get(spec) ?? sctpJudges.get(spec))!));
  }

  private target(to: string, family: Family): string {
    return this.addrOf(family)(to);
  }

  private async probeSockets(specs: ProbeSpec[]): Promise<Map<ProbeSpec, (from: string, to: string) => boolean>> {
    const answers = new Map<string, boolean>();
    await Promise.all(
      ALL_PODS.map(async (from) => {
        const asked = specs.flatMap((spec) => ALL_PODS.filter((to) => to !== from).map((to) => ({ spec, to })));
        const probes = asked.map(({ spec, to }) => ({ protocol: spec.protocol, port: spec.port, ip: this.target(to, spec.family) }));
        const { results } = await this.pods.get(from)!.agent.request('probe', { probes });
        asked.forEach(({ spec, to }, i) => answers.set(`${specs.indexOf(spec)} ${from}>${to}`, results[i] === true));
      }),
    );
    return new Map(specs.map((spec, i) => [spec, (from: string, to: string) => answers.get(`${i} ${from}>${to}`)!]));
  }

  /** Clears every pod's record of arrived INITs, sends one INIT per pair and port, then reads the records. */
  private async probeSctp(specs: ProbeSpec[]): Promise<Map<ProbeSpec, (from: string, to: string) => boolean>> {
    if (specs.length === 0) return new Map();
    const pods = [...this.pods.values()];
    await Promise.all(pods.map((p) => p.agent.request('sctp-reset')));
    await Promise.all(
      pods.flatMap((p) =>
        specs.map((spec) => p.agent.request('sctp-send', { family: spec.family, port: spec.port, targets: ALL_PODS.filter((to) => to !== p.key).map((to) => this.target(to, spec.family)) })),
      ),
    );
    await new Promise((r) => setTimeout(r, SCTP_SETTLE_MS));
    const seen = new Map(await Promise.all(pods.map(async (p) => [p.key, new Set<string>((await p.agent.request('sctp-seen')).seen)] as const)));
    return new Map(specs.map((spec) => [spec, (from: string, to: string) => seen.get(to)!.has(`${this.target(from, spec.family)} . ${spec.port}`)]));
  }
}
