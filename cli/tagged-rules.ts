import type { Exec } from '../lib/exec.ts';
import type { Family } from '../lib/net/ip.ts';
import { iptablesRestore, iptablesSave, restoreScript, savedComment, type SavedTable } from '../lib/netfilter/iptables.ts';
import { parseReferenceTag } from '../lib/netfilter/tags.ts';
import { shellCommand } from './shell-quote.ts';

/**
 * nat rules tagged with an attachment, in the reference plugins' shape (which ours keep): masquerade
 * `name: "NET" id: "ID"` in POSTROUTING and a chain CNI-<hash>, portmap `dnat name: …` in
 * CNI-HOSTPORT-DNAT jumping to CNI-DN-<hash>. Found by tag, never by recomputing hashes.
 */
export interface TaggedRules {
  network: string;
  containerId: string;
  /** Rules in shared chains, to delete one by one. */
  rules: { chain: string; spec: string }[];
  /** The attachment's own chains, to flush and delete. */
  chains: string[];
}

const OWN_CHAIN = /^CNI-(DN-[0-9a-f]{21}|[0-9a-f]{24})$/;

/** Groups the tagged rules of attachments `pick` selects (pure). */
export function findTaggedRules(saved: SavedTable, pick: (network: string, containerId: string) => boolean): TaggedRules[] {
  const groups = new Map<string, TaggedRules>();
  for (const rule of saved.rules) {
    const tag = parseReferenceTag(savedComment(rule.spec));
    if (!tag || !pick(tag.network, tag.containerId)) continue;
    const key = `${tag.network}/${tag.containerId}`;
    const g = groups.get(key) ?? { network: tag.network, containerId: tag.containerId, rules: [], chains: [] };
    groups.set(key, g);
    const target = / -j (\S+)$/.exec(rule.spec)?.[1];
    for (const c of [rule.chain, target]) if (c && OWN_CHAIN.test(c) && !g.chains.includes(c)) g.chains.push(c);
    if (!OWN_CHAIN.test(rule.chain)) g.rules.push(rule);
  }
  return [...groups.values()];
}

/** iptables-restore lines removing the groups: shared-chain rules first, then own chains. */
export function sweepLines(groups: readonly TaggedRules[]): string[] {
  return [
    ...groups.flatMap((g) => g.rules.map((r) => `-D ${r.chain} ${r.spec}`)),
    ...groups.flatMap((g) => g.chains.map((c) => `-F ${c}`)),
    ...groups.flatMap((g) => g.chains.map((c) => `-X ${c}`)),
  ];
}

/**
 * The words of an iptables-save rule line as iptables-restore splits them: whitespace outside double
 * quotes separates, `\"` and `\\` inside quotes stand for `"` and `\`.
 */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted && c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word = (word ?? '') + line[++i];
    else if (c === '"') {
      quoted = !quoted;
      word ??= '';
    } else if (!quoted && /\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The same as shell commands, for a human to run: every word quoted for the shell. */
export const sweepCommands = (g: TaggedRules, tool: string): string[] => sweepLines([g]).map((l) => shellCommand([tool, '-t', 'nat', ...splitRuleLine(l)]));

export const FAMILIES: readonly [Family, string][] = [[4, 'iptables'], [6, 'ip6tables']];

/**
 * Removes what tagged nat rules the given attachments left (both families, one restore each).
 * The reference bridge 1.1.1 leaves its masquerade chain when DEL comes after the netns is gone.
 */
export async function sweepTaggedRules(exec: Exec, pick: (network: string, containerId: string) => boolean): Promise<number> {
  let removed = 0;
  for (const [family] of FAMILIES) {
    const groups = findTaggedRules(await iptablesSave(exec, family, 'nat'), pick);
    const lines = sweepLines(groups);
    await iptablesRestore(exec, family, restoreScript('nat', lines));
    removed += groups.length;
  }
  return removed;
}
