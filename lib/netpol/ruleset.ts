import { digestHex } from '../digest.ts';
import type { Family } from '../net/ip.ts';
import type { Direction } from './objects.ts';
import type { Protocol } from './protocol.ts';

/**
 * The desired state of table `inet tscni_policy` as data: what compile produces, render prints,
 * diff compares, and a test evaluator runs packets through. Plus the names of every chain and set,
 * in one place. Pure.
 *
 * Public surface:
 *   interface Ruleset { sets: NftSet[]; chains: NftChain[] }    sorted by name (base chains first)
 *   interface NftSet { name, type, map, elements }              `map`: a verdict map (element `k : jump c`)
 *   interface NftChain { name, comment?, hook?, rules }          `hook`: base chain on forward
 *   type Match, Verdict; interface Rule { matches, verdict }
 *   interface ElementChange { set, element }                    one set/map element
 *   TABLE, policyId, policyChain, namespaceChain, isolationMap, targetsSet, peersSet, namedPortSet
 *   guardedSet(family), registeredSet(family)                  the pre-registration guard's sets (guard.ts)
 *   elementKey(element)                                          a map element's key (`k : v` → `k`)
 *   checkName(name)                                              refuses anything outside [a-z0-9.-]
 *   checkElement(element)                                        refuses anything but an address element
 */
export const TABLE = 'tscni_policy';

export type AddrDir = 'saddr' | 'daddr';

export type Match =
  | { readonly kind: 'ct-established' }
  | { readonly kind: 'icmpv6-nd' }
  /** `ip saddr @set`; `negate`: `ip saddr != @set` */
  | { readonly kind: 'addr-set'; readonly family: Family; readonly dir: AddrDir; readonly set: string; readonly negate?: boolean }
  /** `ip daddr 10.0.0.0/8 ip daddr != { 10.1.0.0/16 }` (canonical CIDRs) */
  | { readonly kind: 'cidr'; readonly family: Family; readonly dir: AddrDir; readonly cidr: string; readonly except: readonly string[] }
  /** `meta l4proto { tcp, udp }` */
  | { readonly kind: 'l4proto'; readonly protocols: readonly Protocol[] }
  /** `meta l4proto . th dport { tcp . 80, tcp . 81-90 }` (ranges merged, never overlapping) */
  | { readonly kind: 'ports'; readonly entries: readonly PortRange[] }
  /** `ip daddr . meta l4proto . th dport @set` */
  | { readonly kind: 'named-ports'; readonly family: Family; readonly set: string };

export interface PortRange {
  readonly protocol: Protocol;
  readonly first: number;
  readonly last: number;
}

export type Verdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'jump'; readonly chain: string }
  /** `ip saddr vmap @map`: jumps to the chain the packet's address maps to; no element, no verdict. */
  | { readonly kind: 'vmap'; readonly family: Family; readonly dir: AddrDir; readonly map: string };

export interface Rule {
  readonly matches: readonly Match[];
  readonly verdict: Verdict;
}

export interface NftChain {
  readonly name: string;
  readonly comment?: string;
  /** A base chain on the forward hook; `filter - 1` runs before `filter`. Policy accept. */
  readonly hook?: { readonly priority: 'filter - 1' | 'filter' };
  readonly rules: readonly Rule[];
}

export type SetType = 'ipv4_addr' | 'ipv6_addr' | 'ipv4_addr . inet_proto . inet_service' | 'ipv6_addr . inet_proto . inet_service';

export interface NftSet {
  readonly name: string;
  /** The key type; with `map` the values are verdicts. */
  readonly type: SetType;
  readonly map: boolean;
  /** `flags interval`: elements are CIDRs (`10.1.0.0/24`), none inside another (see guard.ts). */
  readonly interval?: boolean;
  /** Sorted element texts: `10.0.0.1`, `10.0.0.1 . tcp . 80`, `10.0.0.1 : jump ns-x-ingress` (or `: drop`). */
  readonly elements: readonly string[];
}

export interface Ruleset {
  readonly sets: readonly NftSet[];
  readonly chains: readonly NftChain[];
}

export interface ElementChange {
  readonly set: string;
  readonly element: string;
}

const SAFE_NAME = /^[a-z][a-z0-9.-]{0,250}$/;

/** Every chain and set name reaches nft text unquoted: refuse rather than quote. */
export function checkName(name: string): string {
  if (!SAFE_NAME.test(name)) throw new Error(`refusing nft name ${JSON.stringify(name)}`);
  return name;
}

/** 12 hex digits of sha256(`namespace/name`): stable, short and safe chain and set names. */
export const policyId = (namespace: string, name: string): string => digestHex('sha256', `${namespace}/${name}`).slice(0, 12);

export const policyChain = (id: string, dir: Direction): string => `pol-${id}-${dir}`;
export const namespaceChain = (namespace: string, dir: Direction): string => `ns-${namespace}-${dir}`;
export const isolationMap = (dir: Direction, family: Family): string => `${dir}-ns-v${family}`;
/** Base name of a policy's target set; the family suffix is added per address. */
export const targetsSet = (id: string): string => `pol-${id}-targets`;
/**
 * Base name of a rule's peer set, from what decides its elements alone (the rule's pod-selecting
 * peers, canonical text): rules with equal peers share one set — in the upstream shapes most peer
 * sets repeat across namespaces (200 policies of the mix: 16,160 elements in 2,660 distinct).
 */
export const peersSet = (predicate: string): string => `peers-${digestHex('sha256', predicate).slice(0, 12)}`;
export const namedPortSet = (port: string, protocol: Protocol): string => `np-${protocol.toLowerCase()}-${port}`;
export const withFamily = (base: string, family: Family): string => `${base}-v${family}`;
/** This node's pod subnets (an interval set), and the local pod addresses the plugin registered. */
export const guardedSet = (family: Family): string => `guarded-v${family}`;
export const registeredSet = (family: Family): string => `registered-v${family}`;

export const elementKey = (element: string): string => {
  const colon = element.indexOf(' : ');
  return colon < 0 ? element : element.slice(0, colon);
};

const ELEMENT = /^[0-9a-f.:]{2,39}(\/[0-9]{1,3})?( \. (tcp|udp|sctp) \. [0-9]{1,5}| : jump [a-z][a-z0-9.-]{0,250}| : drop)?$/;

/** Elements reach nft text too (and may come from an index file): only address elements pass. */
export function checkElement(element: string): string {
  if (!ELEMENT.test(element)) throw new Error(`refusing nft set element ${JSON.stringify(element)}`);
  return element;
}
