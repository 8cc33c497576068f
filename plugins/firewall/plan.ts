import type { Family } from '../../lib/net/ip.ts';
import { quoteComment, savedComment, type SavedTable } from '../../lib/netfilter/iptables.ts';
import { hasRule } from '../../lib/netfilter/reconcile.ts';
import { hashTag, hashTagAttachment } from '../../lib/netfilter/tags.ts';

export const FORWARD_CHAIN = 'CNI-FORWARD';
export const DEFAULT_ADMIN_CHAIN = 'CNI-ADMIN';
export const STAGE1 = 'CNI-ISOLATION-STAGE-1';
export const STAGE2 = 'CNI-ISOLATION-STAGE-2';
const JUMP_COMMENT = quoteComment('CNI firewall plugin rules');
const ADMIN_COMMENT = quoteComment('CNI firewall plugin admin overrides');
const ISOLATION_COMMENT = quoteComment('CNI firewall plugin rules (ingressPolicy: same-bridge)');

const TAG_KIND = 'tscni-firewall';
/** The comment on an attachment's rules: network and attachment hashes, so DEL and GC need no prevResult. */
export const firewallTag = (net: string, containerId: string): string => hashTag(TAG_KIND, net, containerId);

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

type Rule = SavedTable['rules'][number];

/**
 * Restore lines deleting the rules whose tag `doomed` selects (DEL: one attachment; GC: all but the
 * valid), then CNI-FORWARD and an empty admin chain once no container rule is left (pure). Shared
 * chains are emptied rule by rule, never flushed, so `-X` fails if another writer added meanwhile.
 */
export function planFirewallDel(t: SavedTable, net: string, doomed: (attachmentHash: string) => boolean): string[] {
  const gone = new Set<Rule>(
    t.rules.filter((r) => {
      const hash = hashTagAttachment(savedComment(r.spec), TAG_KIND, net);
      return hash !== undefined && doomed(hash);
    }),
  );
  const removed: string[] = [];
  const isAdminJump = (r: Rule) => r.chain === FORWARD_CHAIN && r.spec.startsWith(`-m comment --comment ${ADMIN_COMMENT} -j `);
  if (t.chains.includes(FORWARD_CHAIN) && t.rules.every((r) => r.chain !== FORWARD_CHAIN || gone.has(r) || isAdminJump(r))) {
    const admins = t.rules.filter(isAdminJump);
    for (const r of [...admins, ...t.rules.filter((r) => r.spec.endsWith(`-j ${FORWARD_CHAIN}`))]) gone.add(r);
    removed.push(FORWARD_CHAIN);
    for (const admin of new Set(admins.map((r) => r.spec.split(' -j ')[1]!))) {
      const used = t.rules.some((r) => !gone.has(r) && (r.chain === admin || r.spec.endsWith(`-j ${admin}`)));
      if (!used && t.chains.includes(admin)) removed.push(admin);
    }
  }
  return [...[...gone].map((r) => `-D ${r.chain} ${r.spec}`), ...removed.map((c) => `-X ${c}`)];
}

/**
 * GC of ingressPolicy same-bridge: the isolation rules of bridges that no longer exist, and the
 * isolation chains once no bridge is left in them (pure).
 */
export function planIsolationGc(t: SavedTable, bridgeExists: (name: string) => boolean): string[] {
  if (!t.chains.includes(STAGE1)) return [];
  const isolation = (r: Rule) => r.spec.includes(`--comment ${ISOLATION_COMMENT}`);
  const bridgeOf = (r: Rule) => /(?:^| )-o (\S+) /.exec(r.spec)?.[1];
  const gone = new Set<Rule>(t.rules.filter((r) => (r.chain === STAGE1 || r.chain === STAGE2) && isolation(r) && bridgeOf(r) !== undefined && !bridgeExists(bridgeOf(r)!)));
  const left = t.rules.filter((r) => (r.chain === STAGE1 || r.chain === STAGE2) && !gone.has(r));
  const removed: string[] = [];
  if (left.every((r) => r.spec === `-m comment --comment ${ISOLATION_COMMENT} -j RETURN`)) {
    for (const r of [...left, ...t.rules.filter((r) => r.spec.endsWith(`-j ${STAGE1}`))]) gone.add(r);
    removed.push(STAGE1, ...(t.chains.includes(STAGE2) ? [STAGE2] : []));
  }
  return [...[...gone].map((r) => `-D ${r.chain} ${r.spec}`), ...removed.map((c) => `-X ${c}`)];
}
