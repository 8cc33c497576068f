import { renderChainDecl, renderRule, renderRuleset, renderSetDecl } from './render.ts';
import { checkElement, checkName, elementKey, TABLE, type ElementChange, type NftChain, type Ruleset } from './ruleset.ts';

/**
 * The smallest nft script taking the kernel's table from one Ruleset to another, as one
 * transaction. Pure.
 *
 * Public surface:
 *   diffRuleset(prev, next): string          '' when equal; the full render when `prev` is undefined
 *   renderElementAdds(changes): string       `add element` lines for podElements (the plugin's ADD)
 *   renderElementDeletes(changes): string    `delete element` lines (the plugin's DEL)
 *
 * Pod, label and namespace churn changes only elements, so its diff is only `add element` /
 * `delete element` lines. Policy changes add sets and chains, flush and refill changed chains, and
 * delete what is gone, in an order that never leaves a dangling reference inside the transaction:
 * new sets and chains, element deletes (so no map element jumps to a chain about to go), flush and
 * refill, deletes of chains and sets, element adds. Base chains and set types are fixed by their
 * names; should they differ anyway, the answer is the full render (which replaces the table).
 * The diff assumes the kernel holds `prev`; a caller that does not know that renders in full.
 */
export function diffRuleset(prev: Ruleset | undefined, next: Ruleset): string {
  if (!prev) return renderRuleset(next);
  const prevSets = new Map(prev.sets.map((s) => [s.name, s]));
  const nextSets = new Map(next.sets.map((s) => [s.name, s]));
  const prevChains = new Map(prev.chains.map((c) => [c.name, c]));
  const nextChains = new Map(next.chains.map((c) => [c.name, c]));
  for (const s of next.sets) {
    const old = prevSets.get(s.name);
    if (old && (old.type !== s.type || old.map !== s.map || !old.interval !== !s.interval)) return renderRuleset(next);
  }
  if (baseChains(prev) !== baseChains(next)) return renderRuleset(next);

  const out: string[] = [];
  const newSets = next.sets.filter((s) => !prevSets.has(s.name));
  for (const s of newSets) out.push(`add ${s.map ? 'map' : 'set'} inet ${TABLE} ${checkName(s.name)} { ${renderSetDecl(s)} }`);
  for (const c of next.chains) {
    if (prevChains.has(c.name)) continue;
    const decl = renderChainDecl(c);
    out.push(`add chain inet ${TABLE} ${checkName(c.name)}${decl ? ` { ${decl} }` : ''}`);
  }

  const deletes: ElementChange[] = [];
  const adds: ElementChange[] = [];
  for (const s of next.sets) {
    const old = prevSets.get(s.name);
    const before = new Set(old?.elements ?? []);
    const after = new Set(s.elements);
    for (const e of before) if (!after.has(e)) deletes.push({ set: s.name, element: e });
    for (const e of after) if (!before.has(e)) adds.push({ set: s.name, element: e });
  }
  out.push(...elementLines('delete', deletes));

  for (const c of prev.chains) {
    const now = nextChains.get(c.name);
    if (!now || !sameRules(c, now)) out.push(`flush chain inet ${TABLE} ${checkName(c.name)}`);
  }
  for (const c of next.chains) {
    const old = prevChains.get(c.name);
    if (old && sameRules(old, c)) continue;
    for (const rule of c.rules) out.push(`add rule inet ${TABLE} ${checkName(c.name)} ${renderRule(rule)}`);
  }
  for (const c of prev.chains) if (!nextChains.has(c.name)) out.push(`delete chain inet ${TABLE} ${checkName(c.name)}`);
  for (const s of prev.sets) if (!nextSets.has(s.name)) out.push(`delete ${s.map ? 'map' : 'set'} inet ${TABLE} ${checkName(s.name)}`);

  out.push(...elementLines('add', adds));
  return out.length ? out.join('\n') + '\n' : '';
}

export const renderElementAdds = (changes: readonly ElementChange[]): string => joinLines(elementLines('add', changes));
export const renderElementDeletes = (changes: readonly ElementChange[]): string => joinLines(elementLines('delete', changes));

const joinLines = (lines: string[]) => (lines.length ? lines.join('\n') + '\n' : '');

/** One line per set; a delete names a map element by its key. */
function elementLines(op: 'add' | 'delete', changes: readonly ElementChange[]): string[] {
  const bySet = new Map<string, string[]>();
  for (const c of changes) {
    const list = bySet.get(c.set) ?? [];
    if (!list.length) bySet.set(c.set, list);
    list.push(checkElement(c.element));
  }
  return [...bySet].map(([set, elements]) => `${op} element inet ${TABLE} ${checkName(set)} { ${(op === 'delete' ? elements.map(elementKey) : elements).join(', ')} }`);
}

const sameRules = (a: NftChain, b: NftChain) => a.rules.length === b.rules.length && a.rules.every((r, i) => renderRule(r) === renderRule(b.rules[i]!));
const baseChains = (rs: Ruleset) =>
  rs.chains
    .filter((c) => c.hook)
    .map((c) => [c.name, renderChainDecl(c), ...c.rules.map(renderRule)].join('\n'))
    .join('\n\n');
