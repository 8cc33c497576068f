import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { attachmentHash } from '../../lib/digest.ts';
import { quoteComment, savedComment, type SavedTable } from '../../lib/netfilter/iptables.ts';
import { hasRule } from '../../lib/netfilter/reconcile.ts';
import { parseReferenceTag, referenceTag } from '../../lib/netfilter/tags.ts';
import type { FamilyPlan, Mapping, Portmap } from './conf.ts';

export const DNAT_CHAIN = 'CNI-HOSTPORT-DNAT';
export const SETMARK_CHAIN = 'CNI-HOSTPORT-SETMARK';
export const MASQ_CHAIN = 'CNI-HOSTPORT-MASQ';
const MASQ_COMMENT = quoteComment('CNI portfwd requiring masquerade');
const MARK_COMMENT = quoteComment('CNI portfwd masquerade mark');
/** iptables' multiport match takes at most 15 ports. */
const MULTIPORT_MAX = 15;

/** `CNI-DN-` + 21 hex of sha512(network + containerID): the reference plugin's per-container chain. */
export const dnChain = (net: string, containerId: string): string => 'CNI-DN-' + attachmentHash(net, containerId).slice(0, 21);

const hostCidr = (ip: string) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`);
const destination = (f: FamilyPlan, m: Mapping) => (f.family === 6 ? `[${f.containerIp}]:${m.containerPort}` : `${f.containerIp}:${m.containerPort}`);

/** The rules of the per-container chain, in iptables-save's spelling (CHECK compares them as text). */
export function dnChainRules(p: Portmap, f: FamilyPlan): string[] {
  const mark = p.externalSetMarkChain ?? SETMARK_CHAIN;
  return f.mappings.flatMap((m) => {
    const d = m.hostIP ? ` -d ${hostCidr(m.hostIP)}` : '';
    const match = `-p ${m.protocol} -m ${m.protocol} --dport ${m.hostPort}`;
    const rules: string[] = [];
    if (p.snat) {
      if (p.masqAll) rules.push(`${d.trim() ? `${d.trim()} ` : ''}${match} -j ${mark}`);
      else rules.push(`-s ${f.subnet}${d} ${match} -j ${mark}`);
      // From the host itself: 127.0.0.1 needs masquerade (and route_localnet); IPv6 cannot route ::1.
      if (f.family === 4 && !p.masqAll) rules.push(`-s 127.0.0.1/32${d} ${match} -j ${mark}`);
    }
    rules.push(`${d.trim() ? `${d.trim()} ` : ''}${match} -j DNAT --to-destination ${destination(f, m)}`);
    return rules;
  });
}

interface Taken {
  chain: string;
  protocol: string;
  port: number;
  hostIP?: string;
}

/** The host ports that DNAT rules of per-container chains already forward. */
export function takenPorts(t: SavedTable): Taken[] {
  const out: Taken[] = [];
  for (const r of t.rules) {
    if (!r.chain.startsWith('CNI-DN-') || !r.spec.includes('-j DNAT')) continue;
    const m = /-p (\w+) .*--dport (\d+)/.exec(r.spec);
    if (!m) continue;
    const d = /(?:^| )-d (\S+)\/\d+/.exec(r.spec);
    out.push({ chain: r.chain, protocol: m[1]!, port: Number(m[2]), ...(d ? { hostIP: d[1] } : {}) });
  }
  return out;
}

/** The container that owns a per-container chain, from the comment of a rule jumping to it. */
function ownerOf(t: SavedTable, chain: string): string {
  const rule = t.rules.find((r) => r.chain === DNAT_CHAIN && r.spec.endsWith(`-j ${chain}`));
  return (rule && savedComment(rule.spec)) ?? chain;
}

export function checkConflicts(t: SavedTable, own: string, f: FamilyPlan): void {
  const taken = takenPorts(t).filter((x) => x.chain !== own);
  for (const m of f.mappings) {
    const clash = taken.find((x) => x.protocol === m.protocol && x.port === m.hostPort && (!x.hostIP || !m.hostIP || x.hostIP === m.hostIP));
    if (clash) {
      throw new CniError(ErrorCode.invalidConfig, `host port ${m.hostPort}/${m.protocol}${m.hostIP ? ` on ${m.hostIP}` : ''} is already mapped`, `by ${ownerOf(t, clash.chain)} (chain ${clash.chain})`);
    }
  }
}

/** Restore lines (nat table) forwarding one family's mappings; shared chains only when missing (pure). */
export function planIptablesAdd(t: SavedTable, net: string, containerId: string, p: Portmap, f: FamilyPlan): string[] {
  const chain = dnChain(net, containerId);
  checkConflicts(t, chain, f);
  const lines: string[] = [];
  const ensureChain = (name: string) => !t.chains.includes(name) && lines.push(`-N ${name}`);
  const ensure = (verb: '-A' | '-I', c: string, spec: string) => !hasRule(t, c, spec) && lines.push(verb === '-I' ? `-I ${c} 1 ${spec}` : `-A ${c} ${spec}`);
  ensureChain(DNAT_CHAIN);
  ensure('-I', 'PREROUTING', `-m addrtype --dst-type LOCAL -j ${DNAT_CHAIN}`);
  ensure('-I', 'OUTPUT', `-m addrtype --dst-type LOCAL -j ${DNAT_CHAIN}`);
  if (p.snat && !p.externalSetMarkChain) {
    ensureChain(SETMARK_CHAIN);
    ensureChain(MASQ_CHAIN);
    ensure('-A', SETMARK_CHAIN, `-m comment --comment ${MARK_COMMENT} -j MARK --set-xmark ${p.mark}`);
    ensure('-A', MASQ_CHAIN, `-m mark --mark ${p.mark} -j MASQUERADE`);
    // first in POSTROUTING, as the reference: bridge's ipMasq chain ACCEPTs in-subnet traffic, which would skip hairpin masquerade
    ensure('-I', 'POSTROUTING', `-m comment --comment ${MASQ_COMMENT} -j ${MASQ_CHAIN}`);
  }
  if (t.chains.includes(chain)) lines.push(...unlinkChain(t, chain), `-F ${chain}`);
  else lines.push(`-N ${chain}`);
  const comment = quoteComment(referenceTag('dnat', net, containerId));
  const conditions = f.conditions.length ? `${f.conditions.join(' ')} ` : '';
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) {
    const ports = [...new Set(f.mappings.filter((m) => m.protocol === protocol).map((m) => m.hostPort))];
    for (let i = 0; i < ports.length; i += MULTIPORT_MAX) {
      lines.push(`-A ${DNAT_CHAIN} ${conditions}-p ${protocol} -m comment --comment ${comment} -m multiport --dports ${ports.slice(i, i + MULTIPORT_MAX).join(',')} -j ${chain}`);
    }
  }
  lines.push(...dnChainRules(p, f).map((spec) => `-A ${chain} ${spec}`));
  return lines;
}

/** `-D` lines for every rule that jumps to `chain`. */
function unlinkChain(t: SavedTable, chain: string): string[] {
  return t.rules.filter((r) => r.spec.endsWith(`-j ${chain}`)).map((r) => `-D ${r.chain} ${r.spec}`);
}

/**
 * Restore lines removing per-container chains (DEL: one; GC: those not valid), found by name, and
 * the shared chains once no container uses them (pure). Shared chains are never flushed: their known
 * rules are deleted one by one and `-X` fails the transaction if another writer added to them meanwhile.
 */
export function planIptablesDel(t: SavedTable, chains: readonly string[]): string[] {
  const present = new Set(chains.filter((c) => t.chains.includes(c)));
  const lines: string[] = [];
  const gone = new Set<SavedTable['rules'][number]>();
  const del = (rules: SavedTable['rules']) => {
    for (const r of rules.filter((x) => !gone.has(x))) {
      gone.add(r);
      lines.push(`-D ${r.chain} ${r.spec}`);
    }
  };
  const jumpsTo = (c: string) => t.rules.filter((r) => r.spec.endsWith(`-j ${c}`));
  const rulesIn = (c: string) => t.rules.filter((r) => r.chain === c);
  for (const c of present) del(jumpsTo(c));
  const flushed = [...present].map((c) => `-F ${c}`);
  const removed = [...present];
  const left = (rules: SavedTable['rules']) => rules.filter((r) => !gone.has(r) && !present.has(r.chain));
  if (t.chains.includes(DNAT_CHAIN) && left(rulesIn(DNAT_CHAIN)).length === 0) {
    del(jumpsTo(DNAT_CHAIN));
    removed.push(DNAT_CHAIN);
  }
  if (t.chains.includes(SETMARK_CHAIN) && left(jumpsTo(SETMARK_CHAIN)).length === 0) {
    del([...rulesIn(SETMARK_CHAIN), ...jumpsTo(MASQ_CHAIN), ...rulesIn(MASQ_CHAIN)]);
    removed.push(SETMARK_CHAIN, ...(t.chains.includes(MASQ_CHAIN) ? [MASQ_CHAIN] : []));
  }
  return [...lines, ...flushed, ...removed.map((c) => `-X ${c}`)];
}

/** Per-container chains of `net`, with the container ID from their jump rule's comment (for GC). */
export function chainsOfNetwork(t: SavedTable, net: string): { chain: string; containerId: string }[] {
  const out = new Map<string, string>();
  for (const r of t.rules) {
    if (r.chain !== DNAT_CHAIN) continue;
    const tag = parseReferenceTag(savedComment(r.spec));
    const target = / -j (CNI-DN-[0-9a-f]{21})$/.exec(r.spec)?.[1];
    if (tag?.kind === 'dnat' && tag.network === net && target) out.set(target, tag.containerId);
  }
  return [...out].map(([chain, containerId]) => ({ chain, containerId }));
}
