import { existsSync, readFileSync } from 'node:fs';
import { parseConf } from '../../lib/cni/conf.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { ipBatch, ipJson } from '../../lib/ip/ip.ts';
import { isOwnNetns, refuseOwnNetns } from '../../lib/ip/netns-guard.ts';
import { parseAllowlist, parseTuning, restorableSysctl, stateDir, TuningConf, type Tuning } from './conf.ts';
import { diffLink, originalAttrs, planLinkSet, wantedAttrs, type ObservedLink, type SavedState } from './plan.ts';
import { listStates, loadState, removeState, saveState } from './state.ts';
import { readSysctls, writeSysctls } from './sysctl.ts';

const ALLOWLIST_FILE = '/etc/cni/tuning/allowlist.conf';

function readAllowlist(): string[] | undefined {
  if (!existsSync(ALLOWLIST_FILE)) return undefined;
  return parseAllowlist(readFileSync(ALLOWLIST_FILE, 'utf8'));
}

function parse(ctx: PluginContext): { conf: TuningConf; tuning: Tuning; prev: Result } {
  const { conf, tuning } = parseTuning(ctx.conf, ctx.ifname, ctx.cniArgs(['MAC']).MAC, readAllowlist());
  if (!ctx.prevResult) throw new CniError(ErrorCode.invalidConfig, 'Required prevResult missing', 'tuning runs chained after a plugin that creates the interface');
  if (!existsSync(ctx.netns)) throw new CniError(ErrorCode.unknownContainer, `network namespace ${ctx.netns} does not exist`);
  refuseOwnNetns(ctx.netns);
  return { conf, tuning, prev: ctx.prevResult };
}

const changesLink = (t: Tuning) => Object.keys(wantedAttrs(t)).length > 0;

async function observeLink(ctx: PluginContext): Promise<ObservedLink> {
  const links = await ipJson<ObservedLink[]>(ctx.exec, ['link', 'show', 'dev', ctx.ifname], ctx.netns).catch(() => []);
  const link = links[0];
  if (!link) throw new CniError(ErrorCode.internal, `failed to get "${ctx.ifname}"`, `no such interface in ${ctx.netns}`);
  return link;
}

async function restore(ctx: PluginContext, saved: SavedState): Promise<void> {
  // force: the interface (and its per-interface sysctls) may already be gone, which is fine on DEL.
  await ipBatch(ctx.exec, planLinkSet(saved.ifname, saved.link), { netns: ctx.netns, force: true });
  const sysctls = Object.entries(saved.sysctl).filter(([path, value]) => {
    if (restorableSysctl(path, value)) return true;
    ctx.log.error('not restoring a saved sysctl: not a net.* sysctl of the container', { path });
    return false;
  });
  await writeSysctls(ctx.exec, ctx.netns, sysctls).catch((err: Error) => ctx.log.warn('could not restore sysctls', { error: err.message }));
}

export default definePlugin({
  name: 'tuning',
  summary: 'sets sysctls, MAC, MTU, promisc, allmulti and txqueuelen of a container interface',
  // without CNI_IFNAME and the node's allowlist: a placeholder name, every net.* key
  validate: (conf) => void parseTuning(conf, 'eth0', undefined, undefined),

  async add(ctx) {
    const { conf, tuning, prev } = parse(ctx);
    await using undo = ctx.undo();
    const link = changesLink(tuning) ? await observeLink(ctx) : undefined;
    const sysctlPaths = tuning.sysctl.map(([p]) => p);
    const saved: SavedState = {
      network: conf.name,
      containerId: ctx.containerId,
      ifname: ctx.ifname,
      link: link ? originalAttrs(tuning, link) : {},
      sysctl: await readSysctls(ctx.exec, ctx.netns, sysctlPaths),
    };
    if (link || sysctlPaths.length > 0) {
      saveState(tuning.dataDir, saved);
      undo.push('restore original settings', async () => {
        await restore(ctx, saved);
        removeState(tuning.dataDir, ctx.containerId, ctx.ifname);
      });
    }
    await writeSysctls(ctx.exec, ctx.netns, tuning.sysctl);
    await ipBatch(ctx.exec, planLinkSet(ctx.ifname, wantedAttrs(tuning)), { netns: ctx.netns });
    undo.commit();
    if (!tuning.mac) return prev;
    return { ...prev, interfaces: prev.interfaces?.map((i) => (i.name === ctx.ifname ? { ...i, mac: tuning.mac } : i)) };
  },

  async del(ctx) {
    const conf = parseConf(TuningConf(), ctx.conf);
    const dataDir = stateDir(conf);
    const saved = loadState(dataDir, ctx.containerId, ctx.ifname);
    if (ctx.netns && isOwnNetns(ctx.netns)) {
      // what was saved belongs to the container: forget it, restore nothing into the host, refuse
      if (saved) removeState(dataDir, ctx.containerId, ctx.ifname);
      refuseOwnNetns(ctx.netns);
    }
    if (!saved) return;
    if (ctx.netns && existsSync(ctx.netns)) await restore(ctx, saved);
    removeState(dataDir, ctx.containerId, ctx.ifname);
  },

  async check(ctx) {
    const { tuning } = parse(ctx);
    const problems: string[] = [];
    const sysctls = await readSysctls(ctx.exec, ctx.netns, tuning.sysctl.map(([p]) => p));
    for (const [path, want] of tuning.sysctl) {
      if (sysctls[path] !== want) problems.push(`sysctl ${path} is ${JSON.stringify(sysctls[path])}, configured ${JSON.stringify(want)}`);
    }
    problems.push(...diffLink(wantedAttrs(tuning), await observeLink(ctx), ctx.ifname));
    if (problems.length > 0) throw new CniError(ErrorCode.internal, `tuning: ${problems[0]}`, problems.join('; '));
  },

  async gc(ctx) {
    const conf = parseConf(TuningConf(), ctx.conf);
    const dataDir = stateDir(conf);
    const valid = new Set(ctx.validAttachments().map((a) => `${a.containerID}\n${a.ifname}`));
    for (const s of listStates(dataDir, conf.name)) {
      if (!valid.has(`${s.containerId}\n${s.ifname}`)) removeState(dataDir, s.containerId, s.ifname);
    }
  },
});
