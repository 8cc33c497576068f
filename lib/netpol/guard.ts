import { containsCidr, formatCidr, network, parseCidr, parseIp, type Family } from '../net/ip.ts';
import { elementKey, guardedSet, registeredSet, type ElementChange, type NftSet, type Rule, type Ruleset } from './ruleset.ts';

/**
 * The pre-registration guard and element bookkeeping on a compiled Ruleset. Pure.
 *
 * Public surface:
 *   withGuard(rs, { guarded, registered }): Ruleset     adds the guard's sets and rules
 *   withElements(rs, changes): Ruleset                  adds elements (pods compile does not know)
 *   patchElements(rs, adds, deletes): Ruleset           the ruleset after an element-only transaction
 *   elementsOfAddresses(rs, ips): ElementChange[]       every element keyed by one of these addresses
 *   guardedElements(cidrs): ElementChange[]             CIDRs as guarded-set elements, none inside another
 *   prefixOf(address/prefix): string | undefined        `10.1.0.5/24` → `10.1.0.0/24`
 *
 * Guard: a bridge ADD creates the pod's interface before the netpol ADD registers it. Until then
 * nothing may reach or leave an address of this node's pod subnets (`guarded`) that is not
 * `registered`: the base chains drop it, after ICMPv6 ND but BEFORE `ct state established`: a flow
 * of the address's previous owner still has its conntrack entry until netpol's ADD flushes it, and
 * must not reach the new pod in between. The plugin flushes, then adds the pod to `registered` in
 * the same transaction as its policy memberships.
 */
export function withGuard(rs: Ruleset, input: { guarded: readonly string[]; registered: readonly string[] }): Ruleset {
  const sets: NftSet[] = [];
  for (const f of [4, 6] as const) {
    const guarded = guardedElements(input.guarded).filter((e) => familyOf(e.element) === f).map((e) => e.element);
    const registered = [...new Set(input.registered.filter((a) => familyOf(a) === f))].sort();
    sets.push({ name: guardedSet(f), type: f === 4 ? 'ipv4_addr' : 'ipv6_addr', map: false, interval: true, elements: guarded.sort() });
    sets.push({ name: registeredSet(f), type: f === 4 ? 'ipv4_addr' : 'ipv6_addr', map: false, elements: registered });
  }
  const chains = rs.chains.map((c) => {
    if (!c.hook) return c;
    const dir = c.name === 'egress' ? 'saddr' : 'daddr';
    const guard = ([4, 6] as const).map(
      (f): Rule => ({
        matches: [
          { kind: 'addr-set', family: f, dir, set: guardedSet(f) },
          { kind: 'addr-set', family: f, dir, set: registeredSet(f), negate: true },
        ],
        verdict: { kind: 'drop' },
      }),
    );
    const nd = c.rules.filter((r) => r.matches.some((m) => m.kind === 'icmpv6-nd'));
    return { ...c, rules: [...nd, ...guard, ...c.rules.filter((r) => !nd.includes(r))] };
  });
  return { sets: [...rs.sets, ...sets].sort((a, b) => cmp(a.name, b.name)), chains };
}

/**
 * Adds elements to their sets. Two verdicts for one map key (an address claimed twice) become
 * `drop`, as compile does: neither claimant's namespace decides for the other.
 */
export function withElements(rs: Ruleset, changes: readonly ElementChange[]): Ruleset {
  if (changes.length === 0) return rs;
  const bySet = groupBySet(changes);
  return {
    ...rs,
    sets: rs.sets.map((s) => {
      const adds = bySet.get(s.name);
      if (!adds) return s;
      const elements = new Map(s.elements.map((e) => [elementKey(e), e]));
      for (const e of adds) {
        const key = elementKey(e);
        const existing = elements.get(key);
        elements.set(key, s.map && existing !== undefined && existing !== e ? `${key} : drop` : e);
      }
      return { ...s, elements: [...elements.values()].sort() };
    }),
  };
}

/** What the kernel holds after `delete element` (by key) then `add element` lines were applied. */
export function patchElements(rs: Ruleset, adds: readonly ElementChange[], deletes: readonly ElementChange[]): Ruleset {
  const addBySet = groupBySet(adds);
  const delBySet = groupBySet(deletes);
  return {
    ...rs,
    sets: rs.sets.map((s) => {
      const a = addBySet.get(s.name) ?? [];
      const d = new Set((delBySet.get(s.name) ?? []).map(elementKey));
      if (a.length === 0 && d.size === 0) return s;
      const elements = new Map(s.elements.filter((e) => !d.has(elementKey(e))).map((e) => [elementKey(e), e]));
      for (const e of a) elements.set(elementKey(e), e);
      return { ...s, elements: [...elements.values()].sort() };
    }),
  };
}

/** Every element whose address part is one of `ips` (the guarded subnets excepted): what a pod put in. */
export function elementsOfAddresses(rs: Ruleset, ips: readonly string[]): ElementChange[] {
  const wanted = new Set(ips);
  const out: ElementChange[] = [];
  for (const s of rs.sets) {
    if (s.interval) continue;
    for (const e of s.elements) if (wanted.has(addressOf(e))) out.push({ set: s.name, element: e });
  }
  return out;
}

/** Canonical CIDRs, those inside another dropped (an interval set refuses overlapping elements). */
export function guardedElements(cidrs: readonly string[]): ElementChange[] {
  const parsed = [...new Set(cidrs)].flatMap((t) => {
    const c = parseCidr(t);
    return c ? [{ ...c, ip: network(c) }] : [];
  });
  const kept = parsed.filter((c, i) => !parsed.some((o, j) => j !== i && containsCidr(o, c) && (o.prefix < c.prefix || j < i)));
  return kept.map((c) => ({ set: guardedSet(c.ip.family), element: formatCidr(c) })).sort((a, b) => cmp(a.element, b.element));
}

export function prefixOf(addressWithPrefix: string): string | undefined {
  const c = parseCidr(addressWithPrefix);
  return c ? formatCidr({ ...c, ip: network(c) }) : undefined;
}

/** `10.0.0.1`, `10.0.0.1 . tcp . 80`, `10.0.0.1 : jump x` → `10.0.0.1` (an address has no space). */
const addressOf = (element: string) => {
  const space = element.indexOf(' ');
  return space < 0 ? element : element.slice(0, space);
};
const familyOf = (text: string): Family | undefined => parseIp(text.split('/')[0]!)?.family;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function groupBySet(changes: readonly ElementChange[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of changes) {
    const list = out.get(c.set);
    if (list) list.push(c.element);
    else out.set(c.set, [c.element]);
  }
  return out;
}
