import { explain, resolveEndpoint, type Endpoint, type SideVerdict } from '../lib/netpol/explain.ts';
import { isSelectable } from '../lib/netpol/cluster.ts';
import { matchesSelector } from '../lib/netpol/selector.ts';
import { createLogger } from '../lib/cni/log.ts';
import { parseIp } from '../lib/net/ip.ts';
import { addressesOf, readCluster, resolveNetpol, syncOnce, watch, type ClusterView, type Netpol } from '../plugins/netpol/node-api.ts';
import { defineCommand, EXIT, table, type CommandContext } from './command.ts';
import { readConfFile, scanConfDir, type ConfList } from './conflist.ts';
import { confDirFor, DEFAULT_CONF_DIR } from './network-command.ts';
import { UsageError } from './runtime-conf.ts';

const HELP = `tscni policy sync [--watch] [--full] | ls | explain FROM TO PORT/PROTO   [<network> | --conf FILE]

  sync      compile the objects directory and this node's registered pods, apply the difference
            to table inet tscni_policy (one nft transaction), write the index ADD reads;
            --watch keeps syncing on every change of the objects or of the registrations;
            --full replaces the table instead of diffing against what was applied
  ls        every NetworkPolicy, the directions it isolates and the pods it selects
  explain   the verdict for one connection, and the policy and rule that allow it or why not:
            FROM and TO are namespace/pod or an address, PORT/PROTO e.g. 80/tcp, 53/udp, 9/sctp

The netpol config comes from the conflist of <network> in the config dir, from --conf FILE, or,
with neither, from the only conflist there holding a "netpol" plugin.

Options:
  --conf FILE        a .conflist (or .conf) holding a "netpol" plugin
  --conf-dir DIR     network configs (env NETCONFPATH, default ${DEFAULT_CONF_DIR})
  --log LEVEL        sync's log level on stderr (error|warn|info|debug; default info)
  --json             machine-readable output
`;

/** The netpol plugin of a conflist, or the `policy` keys of a bridge or vxlan that runs it in-process. */
function netpolIn(list: ConfList): Record<string, unknown> | undefined {
  for (const p of list.plugins) {
    if (p.type === 'netpol') return p;
    const policy = p.policy;
    if ((p.type === 'bridge' || p.type === 'vxlan') && policy && typeof policy === 'object' && !Array.isArray(policy)) return { ...policy, type: 'netpol' };
  }
  return undefined;
}

/** The netpol plugin config of the chosen network, resolved as the plugin resolves it. */
function findConf(ctx: CommandContext, network: string | undefined): Netpol {
  let list: ConfList | undefined;
  const file = ctx.args.strings.get('conf');
  if (file) list = readConfFile(file);
  else {
    const candidates = scanConfDir(confDirFor(ctx)).flatMap((s) => (s.list && netpolIn(s.list) && (!network || s.list.name === network) ? [s.list] : []));
    if (candidates.length !== 1) {
      throw new UsageError(candidates.length ? `several networks have a netpol plugin (${candidates.map((c) => c.name).join(', ')}): name one` : `no network${network ? ` "${network}"` : ''} with a netpol plugin in ${confDirFor(ctx)}`);
    }
    list = candidates[0];
  }
  const plugin = list && netpolIn(list);
  if (!list || !plugin) throw new UsageError(`${file} has no plugin of type "netpol" (nor a bridge or vxlan with "policy")`);
  return resolveNetpol({ ...plugin, name: list.name, cniVersion: list.cniVersion });
}

const PROTOCOLS = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' } as const;

function parsePortProto(text: string): { port: number; protocol: 'TCP' | 'UDP' | 'SCTP' } {
  const m = /^([1-9][0-9]{0,4})\/(tcp|udp|sctp)$/i.exec(text);
  const port = m ? Number(m[1]) : 0;
  if (!m || port > 65535) throw new UsageError(`expected PORT/PROTO (e.g. 80/tcp), got ${JSON.stringify(text)}`);
  return { port, protocol: PROTOCOLS[m[2]!.toLowerCase() as keyof typeof PROTOCOLS] };
}

function endpoint(view: ClusterView, text: string, family?: 4 | 6): Endpoint {
  const e = resolveEndpoint(view.cluster, text, family);
  if (typeof e === 'string') throw new UsageError(e);
  return e;
}

/** A local address registered without labels from anywhere: isolated until sync learns them. */
function unknownOwner(view: ClusterView, e: Endpoint): string | undefined {
  const r = e.pod ? undefined : view.unknown.find((u) => addressesOf(u).includes(e.ip));
  return r && `${e.ip} is a local pod of namespace ${r.namespace} (${r.name ?? r.containerId}) whose labels are unknown: it is isolated in both directions while its namespace has policies`;
}

const side = (name: string, who: string, v: SideVerdict) => `  ${name} (${who}): ${v.allowed ? 'allowed' : 'denied'} — ${v.reason}\n`;

export default defineCommand({
  flags: { conf: 'string', 'conf-dir': 'string', watch: 'bool', full: 'bool', log: 'string' },
  help: () => HELP,
  async run(ctx) {
    const [action, ...rest] = ctx.args.positionals;
    const wanted = action === 'explain' ? 3 : 0;
    if (action !== 'sync' && action !== 'ls' && action !== 'explain') throw new UsageError(action ? `unknown policy command ${JSON.stringify(action)}` : 'missing sync, ls or explain');
    if (rest.length < wanted || rest.length > wanted + 1) throw new UsageError(action === 'explain' ? 'explain takes FROM TO PORT/PROTO [<network>]' : 'too many arguments');
    if (action !== 'sync' && (ctx.args.bools.has('watch') || ctx.args.bools.has('full'))) throw new UsageError('--watch and --full are options of sync');
    const conf = findConf(ctx, rest[wanted]);

    if (action === 'sync') {
      // the binary keeps code in the interpreter for short plugin calls; compiling a cluster wants the JIT
      (globalThis as { Bun?: { unsafe?: { setJITPolicy?: (policy: number) => void } } }).Bun?.unsafe?.setJITPolicy?.(1);
      const level = (ctx.args.strings.get('log') ?? 'info') as 'info';
      const log = createLogger({ level }, { cmd: 'policy sync' }, ctx.err);
      const env = { exec: ctx.exec, log };
      if (ctx.args.bools.has('watch')) {
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        await watch(conf, env, stop.signal);
        return EXIT.ok;
      }
      const s = await syncOnce(conf, env, { full: ctx.args.bools.has('full') });
      for (const reason of [...s.rejected, ...s.warnings]) log.warn('object skipped or weakened', { reason });
      ctx.out(ctx.json ? JSON.stringify(s) + '\n' : `synced ${s.policies} policies, ${s.pods} pods (${s.localPods} on ${conf.nodeName}); applied: ${s.applied}; ${s.ms} ms\n`);
      return EXIT.ok;
    }

    const view = readCluster(conf);
    for (const reason of view.rejected) ctx.err(`tscni policy: skipped: ${reason}\n`);
    if (action === 'ls') {
      const rows = [...view.cluster.policies.values()].map((p) => {
        const pods = [...view.cluster.pods.values()].filter((pod) => pod.namespace === p.namespace && isSelectable(pod) && matchesSelector(p.podSelector, pod.labels)).map((pod) => pod.name).sort();
        const unknown = view.unknown.filter((u) => u.namespace === p.namespace).map((u) => `${u.name ?? u.containerId} (labels unknown: isolated)`);
        return { policy: `${p.namespace}/${p.name}`, isolates: p.policyTypes, pods: [...pods, ...unknown] };
      });
      if (ctx.json) ctx.out(JSON.stringify(rows) + '\n');
      else if (rows.length === 0) ctx.out(`no NetworkPolicy in ${conf.objects}\n`);
      else ctx.out(table([['POLICY', 'ISOLATES', 'SELECTS'], ...rows.map((r) => [r.policy, r.isolates.join(','), r.pods.join(', ') || '-'])]));
      return EXIT.ok;
    }

    const [fromText, toText, portText] = rest as [string, string, string];
    const { port, protocol } = parsePortProto(portText);
    const from = endpoint(view, fromText);
    const to = endpoint(view, toText, parseIp(from.ip)!.family);
    const verdict = explain(view.cluster, from, to, port, protocol);
    const notes = [unknownOwner(view, from), unknownOwner(view, to)].filter((n): n is string => !!n);
    if (ctx.json) ctx.out(JSON.stringify({ from: describe(from), to: describe(to), port, protocol, ...verdict, notes }) + '\n');
    else {
      ctx.out(`${describe(from)} -> ${describe(to)} ${protocol.toLowerCase()}/${port}: ${verdict.allowed ? 'ALLOWED' : 'DENIED'}\n`);
      ctx.out(side('egress', describe(from), verdict.egress) + side('ingress', describe(to), verdict.ingress));
      for (const n of notes) ctx.out(`  note: ${n}\n`);
    }
    return EXIT.ok;
  },
});

const describe = (e: Endpoint) => (e.pod ? `${e.pod.namespace}/${e.pod.name} (${e.ip})` : e.ip);
