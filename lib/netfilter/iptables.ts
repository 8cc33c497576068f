import { ipFamily } from '../cni/result.ts';
import type { Exec } from '../exec.ts';
import type { Family } from '../net/ip.ts';
import { NetfilterError } from './errors.ts';

/** The families whose tables a teardown reads: those of a prevResult's addresses, both without any. */
export function familiesOf(ips: readonly { address: string }[] | undefined): readonly Family[] {
  return ips?.length ? [...new Set(ips.map((ip) => ipFamily(ip.address)))] : [4, 6];
}

const SAVE = { 4: 'iptables-save', 6: 'ip6tables-save' } as const;
const RESTORE = { 4: 'iptables-restore', 6: 'ip6tables-restore' } as const;

/** One rule as `iptables-save` prints it: `-A CHAIN <spec>`. */
export interface SavedRule {
  chain: string;
  /** Everything after `-A CHAIN `, re-usable verbatim after `-D CHAIN `. */
  spec: string;
}

/** A table as `iptables-save -t TABLE` prints it. */
export interface SavedTable {
  chains: string[];
  rules: SavedRule[];
}

/** Reads one table (one spawn). */
export async function iptablesSave(exec: Exec, family: Family, table: string): Promise<SavedTable> {
  const out = await exec.runAsync([SAVE[family], '-t', table], { allowFailure: true });
  if (out.status !== 0) throw new NetfilterError(out, '');
  return parseIptablesSave(out.stdout);
}

export function parseIptablesSave(text: string): SavedTable {
  const chains: string[] = [];
  const rules: SavedRule[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) chains.push(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      rules.push(space < 0 ? { chain: rest, spec: '' } : { chain: rest.slice(0, space), spec: rest.slice(space + 1) });
    }
  }
  return { chains, rules };
}

/**
 * Applies `*TABLE … COMMIT` text with `--noflush` in one spawn: the kernel takes it as one
 * transaction, so either every line applies or none does.
 */
/** How long iptables-restore waits for another writer's xtables lock before it fails. */
const XTABLES_WAIT_S = 10;

export async function iptablesRestore(exec: Exec, family: Family, script: string): Promise<void> {
  if (script.trim() === '') return;
  // a bounded wait for the xtables lock (legacy iptables; iptables-nft takes none): the process
  // ends by itself within seconds, so it needs no parent-death signal (lib/exec.ts)
  const out = await exec.runAsync([RESTORE[family], `--wait=${XTABLES_WAIT_S}`, '--noflush'], { input: script, allowFailure: true });
  if (out.status !== 0) throw new NetfilterError(out, script);
}

/** A chain name iptables takes, and safe in restore text: 1-28 letters, digits, "_", "." or "-". */
export const CHAIN_NAME = /^[A-Za-z0-9_.-]{1,28}$/;

/**
 * A `--comment` argument for restore text. The text must already be free of control characters
 * (one line); quotes and backslashes are escaped the way iptables-restore unescapes them.
 */
export function quoteComment(text: string): string {
  if (/[\x00-\x1f\x7f]/.test(text)) throw new Error(`refusing control character in iptables comment ${JSON.stringify(text)}`);
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The comment of a saved rule, unescaped as quoteComment escaped it, if it has one. */
export function savedComment(spec: string): string | undefined {
  const m = /--comment "((?:[^"\\]|\\.)*)"/.exec(spec);
  return m ? m[1]!.replace(/\\(.)/g, '$1') : undefined;
}

/** Restore text for one table: `*nat`, the lines, `COMMIT`. Empty when there are no lines. */
export function restoreScript(table: string, lines: readonly string[]): string {
  return lines.length === 0 ? '' : `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
}
