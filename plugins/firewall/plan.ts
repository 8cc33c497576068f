import { createHash } from 'node:crypto';
import type { Family } from '../../lib/net/ip.ts';
import { quoteComment, type SavedTable } from '../../lib/netfilter/iptables.ts';
import { savedComment } from '../../lib/netfilter/masquerade.ts';
import { hasRule } from '../../lib/netfilter/reconcile.ts';

export const FORWARD_CHAIN = 'CNI-FORWARD';
export const DEFAULT_ADMIN_CHAIN = 'CNI-ADMIN';
export const STAGE1 = 'CNI-ISOLATION-STAGE-1';
export const STAGE2 = 'CNI-ISOLATION-STAGE-2';
const JUMP_COMMENT = quoteComment('CNI firewall plugin rules');
const ADMIN_COMMENT = quoteComment('CNI firewall plugin admin overrides');
const ISOLATION_COMMENT = quoteComment('CNI firewall plugin rules (ingressPolicy: same-bridge)');

const hex = (text: string, n: number) => createHash('sha512').update(text).digest('hex').slice(0, n);
const TAG_PREFIX = 'tscni-firewall';
/** The comment on an attachment's rules: network and attachment hashes, so DEL and GC need no prevResult. */
export const firewallTag = (net: string, containerId: string): string => `${TAG_PREFIX} ${hex(net, 12)} ${hex(net + containerId, 24)}`;
const networkPrefix = (net: string) => `${TAG_PREFIX} ${hex(net, 12)} `;

export interface FirewallPlan {
  adminChain: string;
  /** The container's addresses of one family, e.g. `10.88.0.2` (already validated). */
  ips: string[];
  family: Family;
  tag: string;
  /** With ingressPolicy same-bridge: the bridge whose containers only accept traffic from it. */
  isolateBridge?: string;
}

/** The per-address rules, in iptables-save's own spelling so presence checks are string equality. */
export function attachmentRules(p: Pick<FirewallPlan, 'ips' | 'family' | 'tag'>): string[] {
  const host = p.family === 4 ? 32 : 128;
  const tag = quoteComment(p.tag);
  return p.ips.flatMap((ip) => [
    `-d ${ip}/${host} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ${tag} -j ACCEPT`,
    `-s ${ip}/${host} -m comment --comment ${tag} -j ACCEPT`,
  ]);
}

/** Restore lines that make the filter table allow the attachment, adding only what is missing (pure). */
export function planFirewallAdd(t: SavedTable, p: FirewallPlan): string[] {
  const lines: string[] = [];
  const chain = (name: string) => !t.chains.includes(name) && lines.push(`-N ${name}`);
  const insert = (c: string, spec: string) => !hasRule(t, c, spec) && lines.push(`-I ${c} 1 ${spec}`);
  const append = (c: string, spec: string) => !hasRule(t, c, spec) && lines.push(`-A ${c} ${spec}`);
  chain(FORWARD_CHAIN);
  chain(p.adminChain);
  insert('FORWARD', `-m comment --comment ${JUMP_COMMENT} -j ${FORWARD_CHAIN}`);
  insert(FORWARD_CHAIN, `-m comment --comment ${ADMIN_COMMENT} -j ${p.adminChain}`);
  if (p.isolateBridge) {
    const br = p.isolateBridge;
    chain(STAGE1);
    chain(STAGE2);
    insert('FORWARD', `-m comment --comment ${ISOLATION_COMMENT} -j ${STAGE1}`);
    insert(STAGE1, `-i ${br} ! -o ${br} -m comment --comment ${ISOLATION_COMMENT} -j ${STAGE2}`);
    append(STAGE1, `-m comment --comment ${ISOLATION_COMMENT} -j RETURN`);
    insert(STAGE2, `-o ${br} -m comment --comment ${ISOLATION_COMMENT} -j DROP`);
    append(STAGE2, `-m comment --comment ${ISOLATION_COMMENT} -j RETURN`);
  }
  for (const spec of attachmentRules(p)) append(FORWARD_CHAIN, spec);
  return lines;
}

/** Restore lines deleting the rules whose tag `doomed` selects (DEL: one attachment; GC: all but the valid). */
export function planFirewallDel(t: SavedTable, net: string, doomed: (attachmentHash: string) => boolean): string[] {
  const prefix = networkPrefix(net);
  return t.rules
    .filter((r) => {
      const c = savedComment(r.spec);
      return c?.startsWith(prefix) && doomed(c.slice(prefix.length));
    })
    .map((r) => `-D ${r.chain} ${r.spec}`);
}

export const attachmentHashOf = (net: string, containerId: string) => hex(net + containerId, 24);
