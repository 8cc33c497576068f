import { parseConf } from '../../lib/cni/conf.ts';
import { validIfName } from '../../lib/cni/env.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import type { Exec } from '../../lib/exec.ts';
import { batchLine, ipBatch, ipJson, tcBatch } from '../../lib/ip/ip.ts';
import { readBatch } from '../../lib/ip/read-batch.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import { BandwidthConf, parseBandwidth, type Bucket } from './conf.ts';
import { ifbAlias, ifbName, planAdd, planDel, vethPeerProblem } from './plan.ts';
import { observeQdiscs, type Qdisc } from './tc.ts';

/** Host-side interfaces of a prevResult (no sandbox), with names safe to pass on. */
const hostCandidates = (prev: Result | undefined): string[] =>
  (prev?.interfaces ?? []).filter((i) => !i.sandbox && validIfName(i.name) === undefined && batchSafe(i.name)).map((i) => i.name);

const batchSafe = (name: string): boolean => {
  try {
    batchLine(name);
    return true;
  } catch {
    return false;
  }
};

/**
 * The host end of the container's veth, as the reference finds it: the host interface of prevResult
 * that is the veth peer of CNI_IFNAME. prevResult is input: an interface it names is shaped only
 * when the kernel says the two are peers, so a config cannot make us put qdiscs on the host's uplink.
 */
async function findHostVeth(ctx: PluginContext, prev: Result | undefined): Promise<IpLink> {
  const names = hostCandidates(prev);
  if (names.length === 0) throw new CniError(ErrorCode.invalidConfig, 'bandwidth only supports a veth interface on the host', 'no host interface in prevResult');
  // two read-only spawns side by side: when one rejects, the other only reads (and the core reaps it)
  const [[container], hosts] = await Promise.all([observeLinksDetailed(ctx.exec, [ctx.ifname], ctx.netns), observeLinksDetailed(ctx.exec, names)]);
  if (!container) throw new CniError(ErrorCode.invalidConfig, `bandwidth: container interface ${ctx.ifname} not found`, `not in ${ctx.netns}`);
  const veth = hosts.find((h) => vethPeerProblem(h, container) === undefined);
  if (veth) return veth;
  const why = hosts.map((h) => vethPeerProblem(h, container)).join('; ') || `none of ${names.join(', ')} exists`;
  throw new CniError(ErrorCode.invalidConfig, `bandwidth only supports a veth interface on the host: no host interface in prevResult is the veth peer of ${ctx.ifname}`, why);
}

/** `ip -d -json link show` of each name in one spawn (in `netns`, else here); names that do not exist are skipped. */
async function observeLinksDetailed(exec: Exec, names: readonly string[], netns?: string): Promise<IpLink[]> {
  const reads = await readBatch(exec, names.map((n) => batchLine('link', 'show', 'dev', n)), { netns, details: true });
  return reads.flat() as IpLink[];
}

function tbfMatches(qdiscs: Qdisc[] | undefined, b: Bucket): string | undefined {
  const q = qdiscs?.find((x) => x.root && x.kind === 'tbf');
  if (!q) return 'no tbf qdisc';
  const rate = Math.floor(b.rate / 8);
  return q.options?.rate === rate ? undefined : `tbf rate is ${q.options?.rate} bytes/s, configured ${rate}`;
}

export default definePlugin({
  name: 'bandwidth',
  summary: 'limits a container’s ingress and egress rate with tbf (egress through an ifb device)',
  validate: (conf) => void parseBandwidth(conf),

  async add(ctx) {
    const { conf, limits } = parseBandwidth(ctx.conf);
    const prev = ctx.prevResult;
    if (!prev) throw new CniError(ErrorCode.invalidConfig, 'must be called as chained plugin', 'bandwidth needs a prevResult');
    if (!limits.ingress && !limits.egress) return prev;
    const veth = await findHostVeth(ctx, prev);
    const ifb = ifbName(conf.name, ctx.containerId);
    const plan = planAdd(limits, veth.ifname, ifb, ifbAlias(conf.name), veth.mtu);
    await using undo = ctx.undo();
    undo.push('remove shaping', () => applyDel(ctx.exec, veth.ifname, ifb));
    await ipBatch(ctx.exec, plan.ip);
    await tcBatch(ctx.exec, plan.tc);
    const result: Result = prev;
    if (limits.egress) {
      const [link] = await observeLinksDetailed(ctx.exec, [ifb]);
      result.interfaces = [...(prev.interfaces ?? []), { name: ifb, ...(link?.address ? { mac: link.address } : {}) }];
    }
    undo.commit();
    return result;
  },

  async del(ctx) {
    const conf = parseConf(BandwidthConf(), ctx.conf);
    // Without a netns (or when the pair is gone) only the ifb is ours to remove: the host veth went with its peer.
    const veth = ctx.netns ? await findHostVeth(ctx, ctx.prevResult).catch(() => undefined) : undefined;
    await applyDel(ctx.exec, veth?.ifname, ifbName(conf.name, ctx.containerId));
  },

  async check(ctx) {
    const { conf, limits } = parseBandwidth(ctx.conf);
    if (!ctx.prevResult) throw new CniError(ErrorCode.invalidConfig, 'must be called as chained plugin', 'bandwidth needs a prevResult');
    if (!limits.ingress && !limits.egress) return;
    const veth = await findHostVeth(ctx, ctx.prevResult);
    const ifb = ifbName(conf.name, ctx.containerId);
    const qdiscs = await observeQdiscs(ctx.exec, limits.egress ? [veth.ifname, ifb] : [veth.ifname]);
    const problems = [
      limits.ingress && tbfMatches(qdiscs.get(veth.ifname), limits.ingress)?.replace(/^/, `${veth.ifname}: `),
      limits.egress && !qdiscs.get(veth.ifname)?.some((q) => q.kind === 'ingress') && `${veth.ifname}: no ingress qdisc`,
      limits.egress && tbfMatches(qdiscs.get(ifb), limits.egress)?.replace(/^/, `${ifb}: `),
    ].filter((p): p is string => typeof p === 'string');
    if (problems.length > 0) throw new CniError(ErrorCode.internal, `bandwidth: ${problems[0]}`, problems.join('; '));
  },

  async gc(ctx) {
    const conf = parseConf(BandwidthConf(), ctx.conf);
    const valid = new Set(ctx.validAttachments().map((a) => ifbName(conf.name, a.containerID)));
    const alias = ifbAlias(conf.name);
    const ifbs = await ipJson<(IpLink & { ifalias?: string })[]>(ctx.exec, ['link', 'show', 'type', 'ifb']);
    const stale = ifbs.filter((l) => l.ifalias === alias && !valid.has(l.ifname)).map((l) => `link del dev ${l.ifname}`);
    await ipBatch(ctx.exec, stale, { force: true });
  },
});

async function applyDel(exec: Exec, hostIf: string | undefined, ifb: string): Promise<void> {
  const plan = planDel(hostIf, ifb);
  await tcBatch(exec, plan.tc, { force: true });
  await ipBatch(exec, plan.ip, { force: true });
}
