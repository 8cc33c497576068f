// The upstream netpol e2e model (namespaces x, y, z; pods a, b, c) as real network namespaces: pods
// attached by our built bridge or vxlan plugin inside namespaces that play the nodes, one agent
// process per pod (netpol-agent.mjs) serving TCP/UDP 80 and 81 and probing on request, and each
// node's policy ruleset applied in the node's namespace. Everything it makes belongs to a Scope.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { compile } from '../../lib/netpol/compile.ts';
import { diffRuleset } from '../../lib/netpol/diff.ts';
import type { Protocol } from '../../lib/netpol/objects.ts';
import type { Ruleset } from '../../lib/netpol/ruleset.ts';
import { jsonOrUndefined } from './cni.ts';
import { ALL_PODS, clusterOf, gridOf, modelObjects, NAMESPACES, PODS, type ModelOptions, type Stack } from './netpol-model.ts';
import { OUR_BIN, ROOT } from './paths.ts';
import { runAsync } from './run-async.ts';
import type { Scope } from './scope.ts';
import { underlay, underlayIp, underlayNode } from './vxlan-node.ts';

export type Family = 4 | 6;

export interface NetpolNode {
  /** spec.nodeName of its pods, and what it compiles for. */
  name: string;
  netns: string;
  /** The ruleset the kernel holds, when known (else the next apply replaces the whole table). */
  applied: Ruleset | undefined;
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
const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(process.env.TSCNI_LOG ? { TSCNI_LOG: process.env.TSCNI_LOG } : {}) });
/** How long an SCTP INIT may take to reach its target's counter after nmap sent it. */
const SCTP_SETTLE_MS = 150;

/**
 * The apply step, the one place the suite puts policy into a node's kernel: today the compiler's
 * output loaded with `nft -f` in the node's namespace (a diff from what it holds, else the full
 * table); once the netpol plugin lands, `tscni policy sync` on the node's objects instead.
 */
export async function applyObjects(node: NetpolNode, objects: unknown[]): Promise<void> {
  const next = compile(clusterOf(objects), node.name);
  const script = diffRuleset(node.applied, next);
  node.applied = undefined;
  if (script) {
    const r = await runAsync(['ip', 'netns', 'exec', node.netns, 'nft', '-f', '-'], { input: script, env: baseEnv() });
    if (r.status !== 0) throw new Error(`nft -f on node ${node.name} failed: ${r.stderr}\n${script}`);
  }
  node.applied = next;
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

/** Runs a plugin binary as a runtime on that node would: inside the node's namespace. */
function pluginAdd(node: NetpolNode, plugin: string, pod: { path: string; id: string }, conf: unknown): { ips: { address: string }[] } {
  const env = { ...baseEnv(), CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
  const r = spawnSync('ip', ['netns', 'exec', node.netns, join(OUR_BIN, plugin)], { input: JSON.stringify(conf), env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${plugin} ADD on ${node.name} failed: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
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
    const node: NetpolNode = { name: 'n1', netns: s.netns('k').name, applied: undefined };
    const families: Family[] = stack === 'dual' ? [4, 6] : [stack];
    const ranges = families.map((f) => [{ subnet: f === 4 ? '10.0.0.0/16' : 'fd00::/64' }]);
    const conf = { cniVersion: '1.0.0', name: 'netpol', type: 'bridge', bridge: 'cni0', isGateway: true, ipam: { type: 'host-local', dataDir: s.tmpdir(), ranges } };
    const c = new NetpolCluster([node], families);
    await c.attach(s, () => node, () => conf, 'bridge');
    return c;
  }

  /** The 9 pods spread over 3 nodes joined by the vxlan plugin's overlay (IPv4). */
  static async threeVxlanNodes(s: Scope): Promise<NetpolCluster> {
    const under = underlay(s);
    const peers = [1, 2, 3].map((i) => ({ subnet: `10.0.${i}.0/24`, ip: underlayIp(i) }));
    const nodes: NetpolNode[] = [1, 2, 3].map((i) => ({ name: `n${i}`, netns: underlayNode(s, under, i), applied: undefined }));
    const dirs = new Map(nodes.map((n) => [n, s.tmpdir()]));
    const confOf = (n: NetpolNode) => ({
      cniVersion: '1.0.0',
      name: 'netpol',
      type: 'vxlan',
      network: '10.0.0.0/16',
      subnet: `10.0.${n.name.slice(1)}.0/24`,
      peers,
      stateDir: join(dirs.get(n)!, 'state'),
      ipam: { dataDir: join(dirs.get(n)!, 'ipam') },
    });
    const c = new NetpolCluster(nodes, [4]);
    await c.attach(s, (ns, pod) => nodes[(ns.charCodeAt(0) + pod.charCodeAt(0)) % 3]!, confOf, 'vxlan');
    return c;
  }

  /** ADDs every pod on its node, then starts the agents and waits until all of them serve. */
  private async attach(s: Scope, nodeOf: (ns: string, pod: string) => NetpolNode, confOf: (n: NetpolNode) => unknown, plugin: string): Promise<void> {
    for (const ns of NAMESPACES) {
      for (const name of PODS) {
        const key = `${ns}/${name}`;
        const node = nodeOf(ns, name);
        const netns = s.netns('p');
        const result = pluginAdd(node, plugin, { path: netns.path, id: s.name('c') }, confOf(node));
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
    for (const node of this.nodes) await applyObjects(node, objects);
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
