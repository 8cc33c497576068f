import { existsSync } from 'node:fs';
import { CniError, ErrorCode, invalidConfig } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { formatIp, parseCidr, type Family } from '../../lib/net/ip.ts';
import { familiesOf, iptablesSave } from '../../lib/netfilter/iptables.ts';
import { attachmentHash } from '../../lib/digest.ts';
import { hasRule, reconcileTable } from '../../lib/netfilter/reconcile.ts';
import { parseFirewall, type FirewallConf } from './conf.ts';
import { attachmentRules, DEFAULT_ADMIN_CHAIN, firewallTag, FORWARD_CHAIN, planFirewallAdd, planFirewallDel, planIsolationGc, type FirewallPlan } from './plan.ts';

const BRIDGE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const FAMILIES: readonly Family[] = [4, 6];

function requirePrev(ctx: PluginContext): Result {
  if (!ctx.prevResult) throw new CniError(ErrorCode.invalidConfig, 'missing prevResult from earlier plugin', 'firewall runs chained after a plugin that assigns addresses');
  return ctx.prevResult;
}

/** One plan per IP family that has addresses in the prevResult; everything validated here. */
function plans(ctx: PluginContext, conf: FirewallConf, prev: Result): FirewallPlan[] {
  const byFamily = new Map<Family, string[]>();
  for (const ip of prev.ips ?? []) {
    const cidr = parseCidr(ip.address);
    if (!cidr) throw new CniError(ErrorCode.decodingFailure, `invalid address ${JSON.stringify(ip.address)} in prevResult`);
    byFamily.set(cidr.ip.family, [...(byFamily.get(cidr.ip.family) ?? []), formatIp(cidr.ip)]);
  }
  let isolateBridge: string | undefined;
  if (conf.ingressPolicy === 'same-bridge') {
    isolateBridge = prev.interfaces?.[0]?.name;
    if (!isolateBridge || !BRIDGE_NAME.test(isolateBridge)) {
      throw invalidConfig('interface needs to be set for ingress policy "same-bridge", make sure to chain "firewall" plugin with "bridge"', `prevResult.interfaces[0] is ${JSON.stringify(isolateBridge ?? null)}`);
    }
  }
  const adminChain = conf.iptablesAdminChainName ?? DEFAULT_ADMIN_CHAIN;
  const tag = firewallTag(conf.name, ctx.containerId);
  return [...byFamily].map(([family, ips]) => ({ family, ips, adminChain, tag, ...(isolateBridge ? { isolateBridge } : {}) }));
}

async function remove(ctx: PluginContext, net: string, doomed: (hash: string) => boolean, families: readonly Family[]): Promise<void> {
  for (const family of families) await reconcileTable(ctx.exec, family, 'filter', (t) => planFirewallDel(t, net, doomed));
}

export default definePlugin({
  name: 'firewall',
  summary: 'lets a container’s traffic through the host FORWARD chain (iptables, CNI-FORWARD / CNI-ADMIN)',
  validate: (conf) => void parseFirewall(conf),

  async add(ctx) {
    const conf = parseFirewall(ctx.conf);
    const prev = requirePrev(ctx);
    const todo = plans(ctx, conf, prev);
    await using undo = ctx.undo();
    const mine = attachmentHash(conf.name, ctx.containerId);
    for (const plan of todo) {
      undo.push(`remove IPv${plan.family} firewall rules`, () => remove(ctx, conf.name, (h) => h === mine, [plan.family]));
      await reconcileTable(ctx.exec, plan.family, 'filter', (t) => planFirewallAdd(t, plan));
    }
    undo.commit();
    return prev;
  },

  async del(ctx) {
    const conf = parseFirewall(ctx.conf);
    const mine = attachmentHash(conf.name, ctx.containerId);
    // Rules are found by their tag: a prevResult only narrows which families to read.
    const families = familiesOf(ctx.prevResult?.ips);
    await remove(ctx, conf.name, (h) => h === mine, families);
  },

  async check(ctx) {
    const conf = parseFirewall(ctx.conf);
    for (const plan of plans(ctx, conf, requirePrev(ctx))) {
      const t = await iptablesSave(ctx.exec, plan.family, 'filter');
      const missing = [
        ...(t.rules.some((r) => r.chain === 'FORWARD' && r.spec.endsWith(`-j ${FORWARD_CHAIN}`)) ? [] : [`FORWARD -j ${FORWARD_CHAIN}`]),
        ...attachmentRules(plan).filter((spec) => !hasRule(t, FORWARD_CHAIN, spec)).map((spec) => `${FORWARD_CHAIN} ${spec}`),
      ];
      if (missing.length > 0) throw new CniError(ErrorCode.internal, `firewall: IPv${plan.family} rule missing: ${missing[0]}`, missing.join('; '));
    }
  },

  async gc(ctx) {
    const conf = parseFirewall(ctx.conf);
    const valid = new Set(ctx.validAttachments().map((a) => attachmentHash(conf.name, a.containerID)));
    await remove(ctx, conf.name, (h) => !valid.has(h), FAMILIES);
    const bridgeExists = (name: string) => !BRIDGE_NAME.test(name) || existsSync(`/sys/class/net/${name}`);
    for (const family of FAMILIES) await reconcileTable(ctx.exec, family, 'filter', (t) => planIsolationGc(t, bridgeExists));
  },
});
