import { parseConf } from '../../lib/cni/conf.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import type { Family } from '../../lib/net/ip.ts';
import { familiesOf, iptablesSave, type SavedTable } from '../../lib/netfilter/iptables.ts';
import { attachmentHash } from '../../lib/digest.ts';
import { nftList, reconcileNft } from '../../lib/netfilter/nft.ts';
import { reconcileTable } from '../../lib/netfilter/reconcile.ts';
import { forwardingDir, parsePortmap, PortmapConf, resolvePortmap, type Portmap } from './conf.ts';
import { forwardedOf, isForwarded, markForwarded, unmarkForwarded } from './forwarded.ts';
import { enableLocalnetRouting, flushUdpConntrack } from './host.ts';
import { chainsOfNetwork, dnChain, dnChainRules, planIptablesAdd, planIptablesDel } from './iptables.ts';
import { NFT_TABLE, nftMissing, planNftAdd, planNftDel } from './nftables.ts';

const FAMILIES: readonly Family[] = [4, 6];
const TABLE = ['table', 'inet', NFT_TABLE];

function requirePrev(ctx: PluginContext): Result {
  if (!ctx.prevResult) throw new CniError(ErrorCode.invalidConfig, 'must be called as chained plugin', 'portmap needs a prevResult');
  return ctx.prevResult;
}

/** Removes the forwarding of the attachments `doomed` selects, in both backends' places it could be. */
async function remove(ctx: PluginContext, backend: Portmap['backend'], net: string, chains: (current: SavedTable) => string[], doomed: (attachment: string) => boolean, families: readonly Family[]): Promise<void> {
  if (backend === 'nftables') return reconcileNft(ctx.exec, TABLE, (t) => planNftDel(t, doomed, net).join('\n'));
  for (const family of families) await reconcileTable(ctx.exec, family, 'nat', (t) => planIptablesDel(t, chains(t)));
}

export default definePlugin({
  name: 'portmap',
  summary: 'forwards host ports to a container (DNAT with hairpin and localhost masquerade; iptables or nftables)',
  validate: (conf) => void parsePortmap(conf),

  async add(ctx) {
    const { conf, dir, mappings } = parsePortmap(ctx.conf);
    const prev = requirePrev(ctx);
    if (mappings.length === 0) return prev;
    const p = resolvePortmap(conf, prev, mappings);
    if (p.families.length === 0) return prev;
    await using undo = ctx.undo();
    const attachment = { network: conf.name, containerId: ctx.containerId };
    markForwarded(dir, attachment);
    undo.push('unmark the attachment', () => unmarkForwarded(dir, attachment));
    const mine = attachmentHash(conf.name, ctx.containerId);
    const chain = dnChain(conf.name, ctx.containerId);
    if (p.backend === 'nftables') {
      undo.push('remove nft port forwarding', () => remove(ctx, 'nftables', conf.name, () => [], (h) => h === mine, []));
      await reconcileNft(ctx.exec, TABLE, (t) => planNftAdd(t, conf.name, ctx.containerId, p));
    } else {
      for (const f of p.families) {
        undo.push(`remove IPv${f.family} port forwarding`, () => remove(ctx, 'iptables', conf.name, () => [chain], () => true, [f.family]));
        await reconcileTable(ctx.exec, f.family, 'nat', (t) => planIptablesAdd(t, conf.name, ctx.containerId, p, f));
      }
    }
    const v4 = p.families.find((f) => f.family === 4);
    if (p.snat && v4) await enableLocalnetRouting(ctx.exec, v4.containerIp);
    await flushUdpConntrack(ctx.exec, mappings, ctx.log);
    undo.commit();
    return prev;
  },

  async del(ctx) {
    const conf = parseConf(PortmapConf(), ctx.conf);
    const dir = forwardingDir(conf);
    const attachment = { network: conf.name, containerId: ctx.containerId };
    // Unmarked and no mappings listed: we forwarded nothing (rules another portmap made for listed
    // mappings are still looked for, as the reference does)
    if (!isForwarded(dir, attachment) && !conf.runtimeConfig?.portMappings?.length) return;
    const families = familiesOf(ctx.prevResult?.ips);
    const mine = attachmentHash(conf.name, ctx.containerId);
    await remove(ctx, conf.backend ?? 'iptables', conf.name, () => [dnChain(conf.name, ctx.containerId)], (h) => h === mine, families);
    unmarkForwarded(dir, attachment);
  },

  async check(ctx) {
    const { conf, mappings } = parsePortmap(ctx.conf);
    const prev = requirePrev(ctx);
    if (mappings.length === 0) return;
    const p = resolvePortmap(conf, prev, mappings);
    const missing: string[] = [];
    if (p.backend === 'nftables') missing.push(...nftMissing(await nftList(ctx.exec, TABLE), conf.name, ctx.containerId, p));
    else {
      const chain = dnChain(conf.name, ctx.containerId);
      for (const f of p.families) {
        const t = await iptablesSave(ctx.exec, f.family, 'nat');
        const have = new Set(t.rules.filter((r) => r.chain === chain).map((r) => r.spec));
        missing.push(...dnChainRules(p, f).filter((spec) => !have.has(spec)).map((spec) => `IPv${f.family} ${chain} ${spec}`));
      }
    }
    if (missing.length > 0) throw new CniError(ErrorCode.internal, `portmap: rule missing: ${missing[0]}`, missing.join('; '));
  },

  async gc(ctx) {
    const conf = parseConf(PortmapConf(), ctx.conf);
    const validIds = ctx.validAttachments().map((a) => a.containerID);
    const valid = new Set(validIds.map((id) => attachmentHash(conf.name, id)));
    const keep = new Set(validIds);
    const stale = (t: SavedTable) => chainsOfNetwork(t, conf.name).filter((c) => !keep.has(c.containerId)).map((c) => c.chain);
    await remove(ctx, conf.backend ?? 'iptables', conf.name, stale, (h) => !valid.has(h), FAMILIES);
    const dir = forwardingDir(conf);
    for (const f of forwardedOf(dir, conf.name)) if (!keep.has(f.containerId)) unmarkForwarded(dir, f);
  },
});
