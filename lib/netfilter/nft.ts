import type { Exec } from '../exec.ts';
import { NetfilterError } from './errors.ts';

/** `nft -j list …` output: `{nftables: [{metainfo}, {table}, {chain}, {rule}, …]}`. */
export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr?: unknown[];
}

/** A set or map as `nft -j` shows it; `elem` in nft's JSON element shapes. */
export interface NftSetObject {
  family: string;
  table: string;
  name: string;
  map?: string;
  elem?: unknown[];
}

export interface NftObjects {
  tables: { family: string; name: string; handle: number }[];
  chains: { family: string; table: string; name: string; handle: number }[];
  rules: NftRule[];
  sets: NftSetObject[];
}

/**
 * Reads objects with `nft -j list ARGS` (one spawn). A table or chain that does not exist reads as
 * empty, so teardown needs no existence check first.
 */
export async function nftList(exec: Exec, args: readonly string[]): Promise<NftObjects> {
  const out = await exec.runAsync(['nft', '-j', 'list', ...args], { allowFailure: true });
  if (out.status !== 0) {
    if (/No such file or directory/.test(out.stderr)) return { tables: [], chains: [], rules: [], sets: [] };
    throw new NetfilterError(out, '');
  }
  return parseNftJson(out.stdout);
}

export function parseNftJson(text: string): NftObjects {
  const objects: NftObjects = { tables: [], chains: [], rules: [], sets: [] };
  if (text.trim() === '') return objects;
  const items = (JSON.parse(text) as { nftables?: Record<string, any>[] }).nftables ?? [];
  for (const item of items) {
    if (item.table) objects.tables.push(item.table);
    else if (item.chain) objects.chains.push(item.chain);
    else if (item.rule) objects.rules.push(item.rule);
    else if (item.set) objects.sets.push(item.set);
    else if (item.map) objects.sets.push(item.map);
  }
  return objects;
}

/** Runs an nft script with `nft -f -` in one spawn: one transaction, all or nothing. */
export async function nftApply(exec: Exec, script: string): Promise<void> {
  if (script.trim() === '') return;
  const out = await exec.runAsync(['nft', '-f', '-'], { input: script, allowFailure: true });
  if (out.status !== 0) throw new NetfilterError(out, script);
}

/**
 * Lists, plans a script from what is there, applies it as one transaction; a concurrent writer makes
 * the transaction fail, and we list and plan again (as reconcileTable does for iptables).
 */
export async function reconcileNft(exec: Exec, listArgs: readonly string[], plan: (current: NftObjects) => string, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const script = plan(await nftList(exec, listArgs));
    try {
      return await nftApply(exec, script);
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

const COMMENT = /^[A-Za-z0-9 _.:=/+-]{1,127}$/;

/** A quoted `comment "…"` value: nft strings cannot escape quotes, so only a safe alphabet passes. */
export function nftComment(text: string): string {
  if (!COMMENT.test(text)) throw new Error(`refusing nft comment ${JSON.stringify(text)}`);
  return `"${text}"`;
}
