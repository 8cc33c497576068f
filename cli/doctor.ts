import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { shellCommand, shellQuote } from './shell-quote.ts';
import { loadPlugin, pluginNames } from '../plugins/registry.ts';
import { fileIdentity, findInPath } from '../lib/cni/delegate.ts';
import { toCniError } from '../lib/cni/errors.ts';
import type { Plugin } from '../lib/cni/plugin.ts';
import { isSupported } from '../lib/cni/versions.ts';
import type { Exec } from '../lib/exec.ts';
import { ipJson } from '../lib/ip/ip.ts';
import { contains, formatCidr, formatIp, network, nextIp, parseCidr, parseIp, type Cidr, type Ip } from '../lib/net/ip.ts';
import { iptablesSave, type SavedTable } from '../lib/netfilter/iptables.ts';
import { FAMILIES, findTaggedRules, sweepCommands } from './tagged-rules.ts';
import { cacheDirFor, DEFAULT_CACHE_DIR, listCachedAttachments, type CachedAttachment } from './cache.ts';
import { defineCommand, EXIT } from './command.ts';
import { scanConfDir, type ConfList } from './conflist.ts';
import { findLeaks } from './ipam-command.ts';
import { confDirFor, DEFAULT_CNI_PATH, DEFAULT_CONF_DIR } from './network-command.ts';
import { DEFAULT_DATA_DIR, listNetworkReservations } from './reservations.ts';
import { UsageError, validName } from './runtime-conf.ts';

export type Severity = 'ok' | 'warning' | 'problem';

export interface Finding {
  check: 'plugins' | 'config' | 'bridge' | 'attachments' | 'rules' | 'ipam';
  severity: Severity;
  message: string;
  /** A shell command that repairs it. */
  fix?: string;
}

const HELP = `tscni doctor — check this node and print what is wrong with the command that fixes it

Checks: our plugin links in CNI_PATH; every config parses, its plugins exist, ours (and the IPAM
they delegate to) pass their own plugin's config checks, each problem named by its key; bridges
exist, are up and hold their IPAM gateway; cached attachments whose netns is gone; masquerade and
hostport rules left by attachments that no longer exist; leaked IPAM reservations.

Options:
  --conf-dir DIR    (env NETCONFPATH, default ${DEFAULT_CONF_DIR})
  --cni-path DIRS   (env CNI_PATH, default ${DEFAULT_CNI_PATH})
  --cache-dir DIR   (env CNI_CACHEDIR, default ${DEFAULT_CACHE_DIR})
  --data-dir DIR    host-local store (default ${DEFAULT_DATA_DIR})
  --json            machine-readable output
Exit codes: 0 no problems (warnings allowed), 1 problems found, 2 usage.
`;

/** The executable to link plugins to: ourselves when compiled, else a placeholder. */
function selfPath(): string {
  const name = basename(process.execPath);
  return name === 'node' || name === 'bun' ? '/path/to/tscni' : process.execPath;
}

const has = (dirs: readonly string[], type: string): string | undefined => {
  try {
    return findInPath(type, dirs);
  } catch {
    return undefined;
  }
};

/** Our plugins missing from CNI_PATH (warnings: a node may use other implementations). */
export function checkPluginLinks(dirs: readonly string[], ours: readonly string[], self: string, find = (t: string) => has(dirs, t)): Finding[] {
  const dir = dirs[0] ?? DEFAULT_CNI_PATH;
  const selfId = fileIdentity(self);
  const missing = ours.filter((name) => !find(name));
  const foreign = ours.filter((name) => {
    const file = find(name);
    return file && selfId && fileIdentity(file) !== selfId;
  });
  const out: Finding[] = [];
  if (missing.length > 0) {
    out.push({ check: 'plugins', severity: 'warning', message: `not in CNI_PATH (${dirs.join(':')}): ${missing.join(', ')}`, fix: missing.map((n) => shellCommand(['ln', '-f', self, join(dir, n)])).join(' && ') });
  }
  if (foreign.length > 0) out.push({ check: 'plugins', severity: 'ok', message: `another implementation in CNI_PATH for: ${foreign.join(', ')}` });
  if (out.length === 0) out.push({ check: 'plugins', severity: 'ok', message: `all ${ours.length} tscni plugins are in CNI_PATH` });
  return out;
}

/** A config's problem as its plugin's `validate` (what its ADD refuses) reports it: the key path, then every issue. */
function confProblem(plugin: Plugin, conf: Record<string, unknown>): string | undefined {
  try {
    plugin.validate(conf);
    return undefined;
  } catch (err) {
    const e = toCniError(err);
    return e.details && !e.message.includes(e.details) ? `${e.message} (${e.details})` : e.message;
  }
}

/** The IPAM plugin a plugin config hands its `ipam` section to, unless the plugin (`impl`, when ours) builds its IPAM config itself. */
export function delegatedIpam(plugin: Record<string, unknown>, impl: Plugin | undefined): string | undefined {
  const ipam = plugin.ipam;
  if (impl?.buildsOwnIpam || typeof ipam !== 'object' || ipam === null) return undefined;
  const type = (ipam as { type?: unknown }).type;
  return typeof type === 'string' && type ? type : undefined;
}

/** Our plugins that the configs use, and the IPAM plugins those configs delegate to, by type, from the registry. */
export async function loadUsedPlugins(lists: readonly Pick<ConfList, 'plugins'>[]): Promise<Map<string, Plugin>> {
  const ours = new Set(pluginNames());
  const used = new Map<string, Plugin>();
  const load = async (types: readonly string[]) => {
    for (const type of new Set(types)) {
      const plugin = ours.has(type) && !used.has(type) ? await loadPlugin(type) : undefined;
      if (plugin) used.set(type, plugin);
    }
  };
  const confs = lists.flatMap((l) => l.plugins);
  await load(confs.map((p) => String(p.type)));
  await load(confs.flatMap((p) => delegatedIpam(p, used.get(String(p.type))) ?? []));
  return used;
}

/**
 * Every config file: parses, a valid name and version, plugins found, and ours (and the IPAM
 * inside them) accept their config, checked by each plugin's own `validate` (`plugins`, by type).
 */
export function checkConfigs(scanned: ReturnType<typeof scanConfDir>, find: (type: string) => string | undefined, ours: readonly string[], self: string, pluginDir: string, plugins: ReadonlyMap<string, Plugin>): Finding[] {
  const out: Finding[] = [];
  const seen = new Map<string, string>();
  for (const { file, list, error } of scanned) {
    if (!list) {
      out.push({ check: 'config', severity: 'problem', message: error ?? `${file}: unreadable`, fix: `fix or remove ${shellQuote(file)}` });
      continue;
    }
    const problems: string[] = [];
    try {
      validName('network name', list.name);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (!isSupported(list.cniVersion || '0.1.0')) problems.push(`cniVersion ${JSON.stringify(list.cniVersion)} is not a CNI spec version we speak`);
    const fixes: string[] = [];
    list.plugins.forEach((plugin, i) => {
      const type = String(plugin.type);
      if (!find(type)) {
        problems.push(`plugin ${i} type "${type}" is not in CNI_PATH`);
        if (ours.includes(type)) fixes.push(shellCommand(['ln', '-f', self, join(pluginDir, type)]));
      }
      const conf = { ...plugin, name: list.name, cniVersion: list.cniVersion };
      const impl = plugins.get(type);
      const problem = impl && confProblem(impl, conf);
      if (problem) problems.push(`plugin ${i} (${type}): ${problem}`);
      const ipamType = delegatedIpam(plugin, impl);
      const ipamImpl = ipamType === undefined ? undefined : plugins.get(ipamType);
      const ipamProblem = ipamImpl && confProblem(ipamImpl, conf);
      if (ipamProblem) problems.push(`plugin ${i} (${type}) ipam (${ipamType}): ${ipamProblem}`);
    });
    const shadowed = seen.get(list.name);
    if (shadowed) out.push({ check: 'config', severity: 'warning', message: `${file}: network "${list.name}" is also defined by ${shadowed}, which wins` });
    else seen.set(list.name, file);
    if (problems.length > 0) out.push({ check: 'config', severity: 'problem', message: `${file}: ${problems.join('; ')}`, fix: fixes.length ? fixes.join(' && ') : `edit ${shellQuote(file)}` });
    else out.push({ check: 'config', severity: 'ok', message: `${file}: network "${list.name}" (${list.cniVersion || 'unversioned'}, ${list.plugins.map((p) => p.type).join(' → ')})` });
  }
  if (scanned.length === 0) out.push({ check: 'config', severity: 'warning', message: 'no network configs found' });
  return out;
}

/** What a bridge plugin config expects on the host: its name, whether it is the gateway, its subnets. */
export interface BridgeExpectation {
  network: string;
  bridge: string;
  isGateway: boolean;
  subnets: { subnet: Cidr; gateway: Ip }[];
}

export function bridgeExpectations(lists: readonly ConfList[]): BridgeExpectation[] {
  const out: BridgeExpectation[] = [];
  for (const list of lists) {
    for (const p of list.plugins) {
      if (p.type !== 'bridge') continue;
      const ipam = (p.ipam ?? {}) as Record<string, unknown>;
      const raw: { subnet?: unknown; gateway?: unknown }[] = Array.isArray(ipam.ranges) ? ipam.ranges.flat() : ipam.subnet ? [ipam] : [];
      const subnets = raw.flatMap((r) => {
        const subnet = typeof r.subnet === 'string' ? parseCidr(r.subnet) : undefined;
        if (!subnet) return [];
        const gateway = (typeof r.gateway === 'string' && r.gateway ? parseIp(r.gateway) : undefined) ?? nextIp(network(subnet));
        return gateway ? [{ subnet, gateway }] : [];
      });
      out.push({ network: list.name, bridge: typeof p.bridge === 'string' && p.bridge ? p.bridge : 'cni0', isGateway: p.isGateway === true, subnets });
    }
  }
  return out;
}

interface LinkAddrs {
  up: boolean;
  addrs: Cidr[];
}

/** A bridge vs its IPAM ranges (pure): present when in use, up, holding each subnet's gateway. */
export function checkBridge(want: BridgeExpectation, link: LinkAddrs | undefined, reserved: number): Finding[] {
  const where = `bridge ${want.bridge} (network "${want.network}")`;
  if (!link) {
    return reserved > 0
      ? [{ check: 'bridge', severity: 'problem', message: `${where} is missing but ${reserved} address(es) are reserved`, fix: shellCommand(['tscni', 'gc', want.network]) }]
      : [{ check: 'bridge', severity: 'ok', message: `${where} not created yet (no containers)` }];
  }
  const out: Finding[] = [];
  if (!link.up && reserved > 0) out.push({ check: 'bridge', severity: 'problem', message: `${where} is down with ${reserved} container address(es)`, fix: shellCommand(['ip', 'link', 'set', want.bridge, 'up']) });
  if (want.isGateway) {
    for (const { subnet, gateway } of want.subnets) {
      const inSubnet = link.addrs.filter((a) => contains(subnet, a.ip));
      const fix = shellCommand(['ip', 'addr', 'add', `${formatIp(gateway)}/${subnet.prefix}`, 'dev', want.bridge]);
      if (inSubnet.length === 0) out.push({ check: 'bridge', severity: reserved > 0 ? 'problem' : 'warning', message: `${where} has no address in ${formatCidr(subnet)} (gateway ${formatIp(gateway)})`, fix });
      else if (!inSubnet.some((a) => a.ip.value === gateway.value)) out.push({ check: 'bridge', severity: 'warning', message: `${where} has ${inSubnet.map(formatCidr).join(', ')} but the gateway is ${formatIp(gateway)}`, fix });
    }
  }
  if (out.length === 0) out.push({ check: 'bridge', severity: 'ok', message: `${where} is ${link.up ? 'up' : 'down'}${link.addrs.length ? ` with ${link.addrs.map(formatCidr).join(', ')}` : ''}` });
  return out;
}

async function observeLink(exec: Exec, name: string): Promise<LinkAddrs | undefined> {
  try {
    const [link] = await ipJson<{ flags?: string[]; addr_info?: { local: string; prefixlen: number }[] }[]>(exec, ['addr', 'show', 'dev', name]);
    if (!link) return undefined;
    const addrs = (link.addr_info ?? []).flatMap((a) => {
      const c = parseCidr(`${a.local}/${a.prefixlen}`);
      return c ? [c] : [];
    });
    return { up: (link.flags ?? []).includes('UP'), addrs };
  } catch {
    return undefined;
  }
}

/** Tagged masquerade/portmap rules whose attachment is no longer cached, with their removal (pure). */
export function findStaleRules(saved: SavedTable, live: ReadonlySet<string>, tool = 'iptables'): Finding[] {
  return findTaggedRules(saved, (net, cid) => !live.has(`${net}/${cid}`)).map((g) => ({
    check: 'rules' as const,
    severity: 'problem' as const,
    message: `${g.rules.length + g.chains.length} ${tool} nat rule(s)/chain(s) left by network "${g.network}" container ${g.containerId}, which has no cached attachment`,
    fix: sweepCommands(g, tool).join(' && '),
  }));
}

export function checkAttachments(cached: readonly CachedAttachment[], netnsExists: (p: string) => boolean = existsSync): Finding[] {
  const gone = cached.filter((a) => a.netns && !netnsExists(a.netns));
  const networks = [...new Set(gone.map((a) => a.networkName))];
  return networks.map((net) => {
    const n = gone.filter((a) => a.networkName === net).length;
    return { check: 'attachments' as const, severity: 'problem' as const, message: `${n} cached attachment(s) of network "${net}" whose netns is gone`, fix: shellCommand(['tscni', 'gc', net]) };
  });
}

export default defineCommand({
  flags: { 'conf-dir': 'string', 'cni-path': 'string', 'cache-dir': 'string', 'data-dir': 'string' },
  help: () => HELP,
  async run(ctx) {
    if (ctx.args.positionals.length > 0) throw new UsageError('doctor takes no arguments');
    const dirs = (ctx.args.strings.get('cni-path') ?? ctx.env.CNI_PATH ?? DEFAULT_CNI_PATH).split(':').filter(Boolean);
    const confDir = confDirFor(ctx);
    const cacheDir = cacheDirFor(ctx);
    const dataDir = ctx.args.strings.get('data-dir') || DEFAULT_DATA_DIR;
    const self = selfPath();
    const ours = pluginNames();
    const find = (t: string) => has(dirs, t);
    const scanned = scanConfDir(confDir);
    const lists = scanned.flatMap((s) => (s.list ? [s.list] : []));
    const cached = listCachedAttachments(cacheDir);
    const reservations = listNetworkReservations(dataDir);

    const plugins = await loadUsedPlugins(lists);
    const findings: Finding[] = [...checkPluginLinks(dirs, ours, self, find), ...checkConfigs(scanned, find, ours, self, dirs[0] ?? DEFAULT_CNI_PATH, plugins)];
    for (const want of bridgeExpectations(lists)) {
      findings.push(...checkBridge(want, await observeLink(ctx.exec, want.bridge), reservations.filter((r) => r.network === want.network).length));
    }
    findings.push(...checkAttachments(cached));
    const live = new Set(cached.map((a) => `${a.networkName}/${a.containerId}`));
    for (const [family, tool] of FAMILIES) {
      try {
        findings.push(...findStaleRules(await iptablesSave(ctx.exec, family, 'nat'), live, tool));
      } catch (err) {
        findings.push({ check: 'rules', severity: 'warning', message: `cannot read ${tool} nat table: ${(err as Error).message}` });
      }
    }
    findings.push(...findLeaks(reservations, cached).map((l) => ({ check: 'ipam' as const, severity: 'problem' as const, message: `${l.network} ${l.address} held by ${l.containerID}: ${l.reason}`, fix: l.fix })));

    const problems = findings.filter((f) => f.severity === 'problem').length;
    if (ctx.json) ctx.out(JSON.stringify({ problems, findings }) + '\n');
    else {
      const mark = { ok: 'ok  ', warning: 'WARN', problem: 'FAIL' } as const;
      for (const f of findings) ctx.out(`${mark[f.severity]} ${f.check}: ${f.message}\n${f.fix ? `     fix: ${f.fix}\n` : ''}`);
      ctx.out(problems ? `${problems} problem(s) found\n` : 'no problems found\n');
    }
    return problems > 0 ? EXIT.failure : EXIT.ok;
  },
});
