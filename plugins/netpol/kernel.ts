import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Logger } from '../../lib/cni/log.ts';
import type { Exec } from '../../lib/exec.ts';
import { parseIp, type Family } from '../../lib/net/ip.ts';
import { deleteAddressConntrack } from '../../lib/netfilter/conntrack.ts';
import { nftList } from '../../lib/netfilter/nft.ts';
import { TABLE } from '../../lib/netpol/ruleset.ts';

/**
 * What the plugin reads from and does to the kernel besides `nft -f`: whether our table exists,
 * the elements it holds (CHECK), br_netfilter's switches, conntrack flushes.
 *
 * Public surface:
 *   tablePresent(exec): Promise<boolean>
 *   kernelElements(exec): Promise<Map<set, Set<element>> | undefined>   undefined: no table
 *   bridgeNetfilterOff(families): string[]     the sysctls (of this netns) that are 0 or missing
 *   flushConntrack(exec, log, ips)              entries from or to these addresses; never throws
 *   conntrackMentions(ips, file?): Set | undefined   the addresses the conntrack table names; undefined: unreadable
 */
export async function tablePresent(exec: Exec): Promise<boolean> {
  return (await nftList(exec, ['tables', 'inet'])).tables.some((t) => t.name === TABLE);
}

type NftValue = string | number | { concat?: NftValue[]; prefix?: { addr: string; len: number }; elem?: { val: NftValue } } | NftValue[];

/** One element of `nft -j` as our element text (`10.0.0.1`, `10.0.0.1 . tcp . 80`, `10.0.0.1 : jump ns-x-ingress`, `10.1.0.0/24`). */
function elementText(v: unknown): string {
  if (Array.isArray(v)) {
    const [key, verdict] = v as [unknown, Record<string, { target?: string } | null>];
    const kind = Object.keys(verdict ?? {})[0] ?? '';
    const target = verdict?.[kind]?.target;
    return `${elementText(key)} : ${kind}${target ? ` ${target}` : ''}`;
  }
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  const o = v as Exclude<NftValue, string | number | NftValue[]>;
  if (o.concat) return o.concat.map(elementText).join(' . ');
  if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
  if (o.elem) return elementText(o.elem.val);
  return JSON.stringify(v);
}

export async function kernelElements(exec: Exec): Promise<Map<string, Set<string>> | undefined> {
  const objects = await nftList(exec, ['table', 'inet', TABLE]);
  if (objects.tables.length === 0) return undefined;
  return new Map(objects.sets.map((s) => [s.name, new Set((s.elem ?? []).map(elementText))]));
}

const SWITCH: Record<Family, string> = { 4: 'bridge-nf-call-iptables', 6: 'bridge-nf-call-ip6tables' };

/** Bridged traffic meets the inet forward hook only through br_netfilter with these on. */
export function bridgeNetfilterOff(families: Iterable<Family>): string[] {
  const off: string[] = [];
  for (const f of new Set(families)) {
    let value = '';
    try {
      value = readFileSync(`/proc/sys/net/bridge/${SWITCH[f]}`, 'utf8').trim();
    } catch {
      // br_netfilter not loaded: off
    }
    if (value !== '1') off.push(`net.bridge.${SWITCH[f]}`);
  }
  return off;
}

/**
 * `conntrack -D -s IP` and `-d IP`: no flow of an address's previous owner counts as established.
 * A new pod's address usually has no entry: /proc/net/nf_conntrack (this network namespace's table)
 * says which addresses have one, and only those cost two spawns; without that file, all of them do.
 */
export async function flushConntrack(exec: Exec, log: Logger, ips: readonly string[]): Promise<void> {
  const named = conntrackMentions(ips);
  const flush = named ? ips.filter((ip) => named.has(ip)) : ips;
  const runs = flush.flatMap((ip) => (['-s', '-d'] as const).map((dir) => deleteAddressConntrack(exec, dir, ip)));
  for (const r of await Promise.allSettled(runs)) {
    if (r.status === 'rejected') log.warn('could not flush conntrack entries', { error: (r.reason as Error).message });
    // exit 1 with "0 flow entries": nothing to flush
    else if (r.value.status !== 0 && !/0 flow entries/.test(r.value.stderr)) log.warn('could not flush conntrack entries', { argv: r.value.argv.join(' '), stderr: r.value.stderr.trim() });
  }
}

/** The table prints `src=10.1.0.5 ` and, for IPv6, every group in full (`%pI6`: `fd00:0000:…:0005`). */
function conntrackText(ip: string): string | undefined {
  const parsed = parseIp(ip);
  if (!parsed) return undefined;
  if (parsed.family === 4) return `=${ip} `;
  return `=${parsed.value.toString(16).padStart(32, '0').replace(/(.{4})(?!$)/g, '$1:')} `;
}

const CHUNK = 1 << 16;

/**
 * Which of `ips` appear in the conntrack table (any direction, any tuple), read in chunks and
 * stopped as soon as all are found. Undefined when the table cannot be read (no
 * CONFIG_NF_CONNTRACK_PROCFS, no conntrack module): the caller then assumes every address does.
 */
export function conntrackMentions(ips: readonly string[], file = '/proc/net/nf_conntrack'): Set<string> | undefined {
  const needles = new Map(ips.flatMap((ip) => {
    const text = conntrackText(ip);
    return text ? [[text, ip] as const] : [];
  }));
  const found = new Set<string>();
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let tail = '';
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const text = tail + buf.toString('latin1', 0, n);
      for (const [needle, ip] of needles) {
        if (text.includes(needle)) {
          found.add(ip);
          needles.delete(needle);
        }
      }
      if (needles.size === 0) break;
      tail = text.slice(-48); // longer than any needle: one split across two reads is still seen
    }
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
  return found;
}
