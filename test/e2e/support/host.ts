import { existsSync, readdirSync, rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { connect, isIP } from 'node:net';
import { join } from 'node:path';
import { parseIptablesSave } from '../../../lib/netfilter/iptables.ts';
import { FORWARD_CHAIN, planFirewallDel } from '../../../plugins/firewall/plan.ts';
import { DNAT_CHAIN, planIptablesDel } from '../../../plugins/portmap/iptables.ts';
import { ipJson } from '../../support/kernel.ts';
import { tryRun } from '../../support/scope.ts';

/** A /24 in 10.200–249.x.0 that no route on this host uses yet; `.1` is the gateway. */
export function freeSubnet(): { subnet: string; prefix: string; gateway: string } {
  const used = new Set(ipJson<{ dst: string }[]>(['route', 'show', 'table', 'all']).map((r) => r.dst));
  for (;;) {
    const prefix = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
    if (![...used].some((d) => d.startsWith(prefix + '.'))) return { subnet: `${prefix}.0/24`, prefix, gateway: `${prefix}.1` };
  }
}

/** A TCP port for hostPort mappings, away from the ephemeral range and the usual services. */
export const freeHostPort = () => randomInt(20_000, 30_000);

/** The lines of iptables-save, ip6tables-save and `nft list ruleset` matching any pattern. */
export function firewallLines(patterns: readonly RegExp[]): string[] {
  const dumps = [tryRun(['iptables-save']).stdout, tryRun(['ip6tables-save']).stdout, tryRun(['nft', 'list', 'ruleset']).stdout];
  return dumps.flatMap((d) => d.split('\n')).filter((l) => patterns.some((p) => p.test(l)));
}

/** Chains these lines jump to or fill that are not the shared top-level CNI chains (they must go with the container). */
export function perContainerChains(lines: readonly string[]): string[] {
  const shared = /^CNI-(FORWARD|ADMIN|HOSTPORT-(DNAT|SNAT|MASQ|SETMARK))$/;
  const names = lines.flatMap((l) => [...l.matchAll(/(?:-A|-j|-N|jump|goto|chain)\s+"?([A-Za-z0-9_-]{4,})/g)].map((m) => m[1]!));
  return [...new Set(names)].filter((n) => n.startsWith('CNI-') && !shared.test(n));
}

/** Whether any of these chains still exists anywhere (iptables or nft). */
export function existingChains(chains: readonly string[]): string[] {
  if (chains.length === 0) return [];
  const dumps = tryRun(['iptables-save']).stdout + tryRun(['ip6tables-save']).stdout + tryRun(['nft', 'list', 'ruleset']).stdout;
  return chains.filter((c) => new RegExp(`(^|[\\s:"])${c}([\\s"]|$)`, 'm').test(dumps));
}

/**
 * What marks a test's own rules on the host: its network name, an address in its /24 (`prefix.N`),
 * its bridge and its containers' IDs (an ID not known yet is skipped: '' would match every line).
 */
export function ownPatterns(net: string, prefix: string, bridge: string, ids: readonly string[]): RegExp[] {
  return [new RegExp(net), new RegExp(`\\b${prefix.replaceAll('.', '\\.')}\\.\\d+\\b`), new RegExp(bridge), ...ids.filter(Boolean).map((id) => new RegExp(id))];
}

/** host-local reservations in a dataDir: `NETWORK/ADDRESS` files (the layout both implementations share). */
export function reservations(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  const networks = readdirSync(dataDir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  return networks.flatMap((n) => readdirSync(join(dataDir, n.name)).filter((f) => isIP(f) !== 0).map((f) => join(n.name, f)));
}

/** Links enslaved to a bridge. */
export const bridgePorts = (bridge: string) => ipJson<{ ifname: string }[]>(['link', 'show', 'master', bridge]).map((l) => l.ifname);

/**
 * What runtimes create on the host whatever their config says: runc's and the shims' state, libcni's
 * default cache, containers/image's blob cache, cgroups. What this run created is removed at the end
 * (cgroups by rmdir, deepest first); /var/lib/cni only when empty: a result left in it is a leak
 * that the checks report.
 */
class RuntimeScratch {
  private readonly created: string[];
  private readonly cgroups: string[];

  constructor(paths: readonly string[], cgroupNames: readonly string[] = []) {
    this.created = paths.filter((p) => !existsSync(p));
    const controllers = existsSync('/sys/fs/cgroup/cgroup.controllers')
      ? ['/sys/fs/cgroup']
      : readdirSync('/sys/fs/cgroup', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join('/sys/fs/cgroup', e.name));
    this.cgroups = controllers.flatMap((c) => cgroupNames.map((n) => join(c, n))).filter((p) => !existsSync(p));
  }

  remove(): void {
    for (const p of this.created) {
      if (p === '/var/lib/cni') {
        tryRun(['rmdir', '/var/lib/cni/results']);
        tryRun(['rmdir', '/var/lib/cni']);
      } else rmSync(p, { recursive: true, force: true });
    }
    for (const cg of this.cgroups) {
      if (!existsSync(cg)) continue;
      const dirs = tryRun(['find', cg, '-depth', '-type', 'd']).stdout.split('\n').filter(Boolean);
      for (const d of dirs) tryRun(['rmdir', d]);
    }
  }
}

/** GET `path` over plain TCP from the host; resolves to the whole response, or '' on error/timeout. */
export function httpGet(host: string, port: number, path = '/index.html'): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const socket = connect({ host, port, timeout: 5_000 }, () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(data);
    });
    socket.on('error', () => resolve(data));
  });
}

/** A shell line for busybox in a container: the same GET with nc. */
export const ncGet = (host: string, port: number, path = '/index.html') => `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 ${host} ${port}`;

/**
 * Deletes the iptables rules matching `patterns`, the per-container chains they use and every rule
 * jumping to those chains: the test's own leftovers (a failed run, or a plugin known to leak), so the
 * machine is left clean either way. One `iptables-restore --noflush` per family, rules before chains.
 */
function purgeRules(patterns: readonly RegExp[]): void {
  for (const [save, restore] of [
    ['iptables-save', 'iptables-restore'],
    ['ip6tables-save', 'ip6tables-restore'],
  ] as const) {
    const tables = new Map<string, { rules: string[]; chains: Set<string> }>();
    let table = '';
    for (const line of tryRun([save]).stdout.split('\n')) {
      if (line.startsWith('*')) tables.set((table = line.slice(1)), { rules: [], chains: new Set() });
      else if (line.startsWith(':')) tables.get(table)?.chains.add(line.slice(1).split(' ')[0]!);
      else if (line.startsWith('-A ')) tables.get(table)?.rules.push(line);
    }
    const script: string[] = [];
    for (const [name, t] of tables) {
      const doomed = new Set(t.rules.filter((r) => patterns.some((p) => p.test(r))));
      let chains: string[] = [];
      for (let grew = true; grew; ) {
        chains = perContainerChains([...doomed]).filter((c) => t.chains.has(c));
        const before = doomed.size;
        for (const r of t.rules) if (chains.some((c) => r.startsWith(`-A ${c} `) || r.endsWith(`-j ${c}`) || r.includes(`-j ${c} `))) doomed.add(r);
        grew = doomed.size > before;
      }
      if (doomed.size === 0) continue;
      script.push(`*${name}`, ...[...doomed].map((r) => '-D' + r.slice(2)), ...chains.map((c) => `-X ${c}`), 'COMMIT');
    }
    if (script.length) tryRun([restore, '--noflush'], script.join('\n') + '\n');
  }
}

/**
 * The shared chains firewall (CNI-FORWARD, CNI-ADMIN) and portmap (CNI-HOSTPORT-*) leave after their
 * last container: the reference plugins 1.1.1 never remove them (ours do). Made at describe time,
 * `removeIfMade()` after the run removes those that were not there before and that nothing uses,
 * planned by our plugins' own DEL plans: rule by rule, so a concurrent writer fails the transaction.
 */
class SharedChains {
  private readonly before = new Map(FAMILY_TOOLS.map(([save]) => [save, SharedChains.present(save)]));

  private static present(save: string): { forward: boolean; hostport: boolean } {
    const chains = (table: string) => parseIptablesSave(tryRun([save, '-t', table]).stdout).chains;
    return { forward: chains('filter').includes(FORWARD_CHAIN), hostport: chains('nat').includes(DNAT_CHAIN) };
  }

  removeIfMade(): void {
    for (const [save, restore] of FAMILY_TOOLS) {
      const was = this.before.get(save)!;
      const script: string[] = [];
      if (!was.forward) {
        const lines = planFirewallDel(parseIptablesSave(tryRun([save, '-t', 'filter']).stdout), 'none', () => false);
        if (lines.length) script.push('*filter', ...lines, 'COMMIT');
      }
      if (!was.hostport) {
        const lines = planIptablesDel(parseIptablesSave(tryRun([save, '-t', 'nat']).stdout), []);
        if (lines.length) script.push('*nat', ...lines, 'COMMIT');
      }
      if (script.length) tryRun([restore, '-w', '--noflush'], script.join('\n') + '\n');
    }
  }
}

/**
 * Everything a runtime's run may leave on the host. Made at describe time, before the run (what is
 * there already is kept); `remove(patterns)` after it deletes the test's own rules (purgeRules), then
 * the shared chains the run made, then the runtimes' scratch paths and cgroups.
 */
export class HostLeftovers {
  private readonly scratch: RuntimeScratch;
  private readonly shared: SharedChains;

  constructor(paths: readonly string[], cgroupNames: readonly string[] = []) {
    this.scratch = new RuntimeScratch(paths, cgroupNames);
    this.shared = new SharedChains();
  }

  remove(patterns: readonly RegExp[]): void {
    purgeRules(patterns);
    this.shared.removeIfMade();
    this.scratch.remove();
  }
}

const FAMILY_TOOLS = [
  ['iptables-save', 'iptables-restore'],
  ['ip6tables-save', 'ip6tables-restore'],
] as const;
