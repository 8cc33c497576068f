import type { Family } from '../net/ip.ts';
import { nftComment } from '../netfilter/nft.ts';
import { checkElement, checkName, TABLE, type Match, type NftChain, type NftSet, type Rule, type Ruleset, type Verdict } from './ruleset.ts';

/**
 * A Ruleset as nft text. Pure.
 *
 * Public surface:
 *   renderRuleset(rs): string       the whole table as one `nft -f` transaction that replaces it
 *   renderRule(rule): string        one rule's text (as in `add rule inet tscni_policy CHAIN <text>`)
 *   renderSetDecl(set): string      `type ipv4_addr;`, `type ipv4_addr : verdict;`, `type ipv4_addr; flags interval;`
 *   renderChainDecl(chain): string  a base chain's `type filter hook …`, else its `comment "…";`, else ''
 *
 * Every name passes checkName and every comment nftComment; addresses and CIDRs are canonical text
 * from validated objects, protocols and port numbers are from closed sets.
 */
export function renderRuleset(rs: Ruleset): string {
  const lines = [`add table inet ${TABLE}`, `delete table inet ${TABLE}`, `table inet ${TABLE} {`];
  for (const set of rs.sets) {
    lines.push(`  ${set.map ? 'map' : 'set'} ${checkName(set.name)} {`, `    ${renderSetDecl(set)}`);
    if (set.elements.length) lines.push(`    elements = { ${set.elements.map(checkElement).join(', ')} }`);
    lines.push('  }');
  }
  for (const chain of rs.chains) {
    lines.push(`  chain ${checkName(chain.name)} {`);
    const decl = renderChainDecl(chain);
    if (decl) lines.push(`    ${decl}`);
    for (const rule of chain.rules) lines.push(`    ${renderRule(rule)}`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function renderSetDecl(set: NftSet): string {
  return `type ${set.type}${set.map ? ' : verdict' : ''};${set.interval ? ' flags interval;' : ''}`;
}

export function renderChainDecl(chain: NftChain): string {
  if (chain.hook) return `type filter hook forward priority ${chain.hook.priority}; policy accept;`;
  return chain.comment ? `comment ${nftComment(chain.comment)};` : '';
}

export function renderRule(rule: Rule): string {
  return [...rule.matches.map(renderMatch), renderVerdict(rule.verdict)].join(' ');
}

const ipOf = (family: Family) => (family === 4 ? 'ip' : 'ip6');

function renderMatch(m: Match): string {
  switch (m.kind) {
    case 'ct-established':
      return 'ct state established,related';
    case 'icmpv6-nd':
      return 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }';
    case 'addr-set':
      return `${ipOf(m.family)} ${m.dir}${m.negate ? ' !=' : ''} @${checkName(m.set)}`;
    case 'cidr': {
      const base = `${ipOf(m.family)} ${m.dir} ${m.cidr}`;
      return m.except.length ? `${base} ${ipOf(m.family)} ${m.dir} != { ${m.except.join(', ')} }` : base;
    }
    case 'l4proto':
      return `meta l4proto { ${m.protocols.map((p) => p.toLowerCase()).join(', ')} }`;
    case 'ports':
      return `meta l4proto . th dport { ${m.entries.map((e) => `${e.protocol.toLowerCase()} . ${e.first === e.last ? e.first : `${e.first}-${e.last}`}`).join(', ')} }`;
    case 'named-ports':
      return `${ipOf(m.family)} daddr . meta l4proto . th dport @${checkName(m.set)}`;
  }
}

function renderVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'accept':
    case 'drop':
      return v.kind;
    case 'jump':
      return `jump ${checkName(v.chain)}`;
    case 'vmap':
      return `${ipOf(v.family)} ${v.dir} vmap @${checkName(v.map)}`;
  }
}
