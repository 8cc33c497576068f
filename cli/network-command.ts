import { existsSync } from 'node:fs';
import { cacheDirFor, DEFAULT_CACHE_DIR, listCachedAttachments, readCacheEntry, type CachedAttachment } from './cache.ts';
import { defineCommand, EXIT, type CommandContext } from './command.ts';
import { loadConfList } from './conflist.ts';
import { goMarshal } from './go-json.ts';
import { addNetworkList, checkNetworkList, delNetworkList, gcNetworkList, statusNetworkList, type GcAttachment, type GcReport, type Runner } from './network-list.ts';
import { sweepTaggedRules } from './tagged-rules.ts';
import { buildRuntimeConf, UsageError, validName, type RuntimeConf } from './runtime-conf.ts';

export const DEFAULT_CONF_DIR = '/etc/cni/net.d';
export const DEFAULT_CNI_PATH = '/opt/cni/bin';

const HELP: Record<string, string> = {
  add: 'tscni add <network> <netns> — ADD every plugin of the network\'s conflist, cache and print the result',
  check: 'tscni check <network> <netns> — CHECK every plugin against the cached result',
  del: 'tscni del <network> [<netns>] — DEL every plugin in reverse order (netns optional when CNI_CONTAINERID is set)',
  gc: 'tscni gc <network> [--valid CID/IFNAME]... — DEL stale cached attachments, then GC every plugin',
  status: 'tscni status <network> — STATUS of every plugin',
};

const COMMON = `
Options:
  --conf-dir DIR     network configs (env NETCONFPATH, default ${DEFAULT_CONF_DIR})
  --cni-path DIRS    plugin directories, ':'-separated (env CNI_PATH, default ${DEFAULT_CNI_PATH})
  --cache-dir DIR    libcni result cache (env CNI_CACHEDIR, default ${DEFAULT_CACHE_DIR})
  --cap-args JSON    capability arguments, e.g. '{"portMappings":[…]}' (env CAP_ARGS)
  --json             machine-readable output
Environment (as cnitool): CNI_IFNAME (default eth0), CNI_ARGS (K=V;K2=V2),
  CNI_CONTAINERID (default "cnitool-" + a hash of the netns path, like cnitool).
check and del without CAP_ARGS / CNI_ARGS use the ones cached at add.
Exit codes: 0 ok, 1 failure, 2 usage.
`;

const GC_HELP = `
  --valid CID/IFNAME  an attachment to keep (repeatable, or comma-separated); without it, the valid
                      attachments are the cached ones whose netns still exists
  --no-sweep          do not remove nat rules (masquerade, portmap) that the deleted attachments'
                      plugins left behind (found by their reference-style tags)
`;

export function runnerFor(ctx: CommandContext): Runner {
  const path = (ctx.args.strings.get('cni-path') ?? ctx.env.CNI_PATH ?? DEFAULT_CNI_PATH).split(':').filter(Boolean);
  return { exec: ctx.exec, path, cacheDir: cacheDirFor(ctx), env: ctx.env };
}

export const confDirFor = (ctx: CommandContext) => ctx.args.strings.get('conf-dir') || ctx.env.NETCONFPATH || DEFAULT_CONF_DIR;

/** `--valid a/eth0,b/eth0 --valid c/net1` → attachments; every part validated. */
export function parseValid(values: readonly string[]): GcAttachment[] {
  return values.flatMap((v) => v.split(',')).filter(Boolean).map((item) => {
    const [cid = '', ifname = '', extra] = item.split('/');
    if (extra !== undefined || !ifname) throw new UsageError(`--valid wants CONTAINERID/IFNAME, got ${JSON.stringify(item)}`);
    return { containerID: validName('container ID', cid), ifname };
  });
}

/** Cached attachments of `network` whose netns still exists (or was never recorded). */
export function liveAttachments(cached: readonly CachedAttachment[], network: string): GcAttachment[] {
  return cached
    .filter((a) => a.networkName === network && (!a.netns || existsSync(a.netns)))
    .map((a) => ({ containerID: a.containerId, ifname: a.ifName }));
}

/**
 * After GC's DELs, removes tagged nat rules the deleted attachments' plugins left behind (the
 * reference bridge 1.1.1 keeps its masquerade chain when the netns is already gone). Only the
 * containers just deleted, and only when none of their attachments to this network is still valid.
 */
async function sweepAfterGc(ctx: CommandContext, network: string, report: GcReport, valid: readonly GcAttachment[]): Promise<number> {
  const stillValid = new Set(valid.map((a) => a.containerID));
  const gone = new Set(report.deleted.filter((d) => !d.error && !stillValid.has(d.containerID)).map((d) => d.containerID));
  if (gone.size === 0 || ctx.args.bools.has('no-sweep')) return 0;
  try {
    return await sweepTaggedRules(ctx.exec, (net, cid) => net === network && gone.has(cid));
  } catch (err) {
    ctx.err(`tscni gc: could not sweep leftover nat rules: ${(err as Error).message}\n`);
    return 0;
  }
}

/**
 * CHECK and DEL without CAP_ARGS/CNI_ARGS reuse the ones cached at ADD (libcni's
 * GetNetworkListCachedConfig, as CRI-O does): portmap cannot remove mappings it is not told of.
 */
function withCachedArgs(rt: RuntimeConf, cacheDir: string, network: string): RuntimeConf {
  let cached;
  try {
    cached = readCacheEntry(cacheDir, network, rt);
  } catch {
    return rt;
  }
  if (!cached) return rt;
  return { ...rt, args: rt.args.length ? rt.args : (cached.cniArgs ?? []), capabilityArgs: rt.capabilityArgs ?? cached.capabilityArgs };
}

export default defineCommand({
  flags: { 'conf-dir': 'string', 'cni-path': 'string', 'cache-dir': 'string', 'cap-args': 'string', valid: 'list', 'no-sweep': 'bool' },
  help: (name) => `${HELP[name]}\n${COMMON}${name === 'gc' ? GC_HELP : ''}`,
  async run(ctx) {
    const verb = ctx.name;
    const [network, netns, ...extra] = ctx.args.positionals;
    if (!network) throw new UsageError('missing <network>');
    const needsNetns = verb === 'add' || verb === 'check';
    const takesNetns = needsNetns || verb === 'del';
    if (extra.length > 0 || (!takesNetns && netns !== undefined)) throw new UsageError('too many arguments');
    if (needsNetns && !netns) throw new UsageError('missing <netns>');
    validName('network name', network);
    const list = loadConfList(confDirFor(ctx), network);
    validName('network name', list.name);
    const runner = runnerFor(ctx);
    const given = buildRuntimeConf({ netns, env: ctx.env, capArgs: ctx.args.strings.get('cap-args'), needsContainer: takesNetns });
    const rt = verb === 'check' || verb === 'del' ? withCachedArgs(given, runner.cacheDir, list.name) : given;

    switch (verb) {
      case 'add': {
        const result = await addNetworkList(runner, list, rt);
        ctx.out(ctx.json ? goMarshal(result, { sortKeys: false }) + '\n' : goMarshal(result, { sortKeys: false, indent: '    ' }) + '\n');
        return EXIT.ok;
      }
      case 'check':
        await checkNetworkList(runner, list, rt);
        ctx.out(ctx.json ? JSON.stringify({ network: list.name, containerID: rt.containerId, ifname: rt.ifname, ok: true, skipped: list.disableCheck }) + '\n' : `${list.name} ${rt.containerId} ${rt.ifname}: ${list.disableCheck ? 'check disabled' : 'ok'}\n`);
        return EXIT.ok;
      case 'del':
        await delNetworkList(runner, list, rt);
        if (ctx.json) ctx.out(JSON.stringify({ network: list.name, containerID: rt.containerId, ifname: rt.ifname, deleted: true }) + '\n');
        return EXIT.ok;
      case 'gc': {
        const cached = listCachedAttachments(runner.cacheDir);
        const validFlag = ctx.args.lists.get('valid');
        const valid = validFlag ? parseValid(validFlag) : liveAttachments(cached, list.name);
        const report = await gcNetworkList(runner, list, cached, valid);
        const swept = await sweepAfterGc(ctx, list.name, report, valid);
        if (ctx.json) ctx.out(JSON.stringify({ network: list.name, valid, ...report, swept }) + '\n');
        else {
          for (const d of report.deleted) ctx.out(`${d.error ? 'failed' : 'deleted'} ${list.name} ${d.containerID} ${d.ifname}${d.error ? `: ${d.error}` : ''}\n`);
          ctx.out(`${list.name}: ${report.deleted.length} stale attachment(s), ${valid.length} valid; ${report.pluginsCalled ? 'plugins garbage-collected' : `plugin GC skipped (cniVersion ${list.cniVersion || 'unset'} < 1.1.0)`}${swept ? `; swept rules left by ${swept} of them` : ''}\n`);
          for (const e of report.errors) ctx.err(`tscni gc: ${e}\n`);
        }
        return report.errors.length > 0 ? EXIT.failure : EXIT.ok;
      }
      case 'status': {
        const called = await statusNetworkList(runner, list);
        ctx.out(ctx.json ? JSON.stringify({ network: list.name, ok: true, checked: called }) + '\n' : `${list.name}: ${called ? 'ready' : `no STATUS before cniVersion 1.1.0 (${list.cniVersion || 'unset'}); assuming ready`}\n`);
        return EXIT.ok;
      }
    }
    throw new UsageError(`unknown command ${verb}`);
  },
});
