import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/store/atomic-file.ts';
import type { CommandContext } from './command.ts';
import { goMarshal } from './go-json.ts';
import type { RuntimeConf } from './runtime-conf.ts';

/**
 * libcni's result cache: one file per attachment at <cacheDir>/results/<net>-<containerID>-<ifname>,
 * holding the list config (base64), the runtime config and the final result. Written in libcni's
 * exact format (with libcni ≥ 1.2's `netns`), so cnitool, containerd and tscni read each other's.
 */
export interface CachedAttachment {
  kind: string;
  containerId: string;
  /** The conflist bytes, decoded from base64. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: Record<string, unknown>;
  file: string;
}

export const CACHE_KIND = 'cniCacheV1';
export const DEFAULT_CACHE_DIR = '/var/lib/cni';

/** The cache a command uses: --cache-dir, else CNI_CACHEDIR (as cnitool), else libcni's default. */
export const cacheDirFor = (ctx: Pick<CommandContext, 'args' | 'env'>) => ctx.args.strings.get('cache-dir') || ctx.env.CNI_CACHEDIR || DEFAULT_CACHE_DIR;

export const cacheFile = (cacheDir: string, network: string, rt: RuntimeConf) =>
  join(cacheDir, 'results', `${network}-${rt.containerId}-${rt.ifname}`);

/** The bytes libcni would write for this attachment. */
export function formatCacheEntry(network: string, configBytes: string, rt: RuntimeConf, result: Record<string, unknown>): string {
  const hasCaps = rt.capabilityArgs && Object.keys(rt.capabilityArgs).length > 0;
  // Field order is cachedInfo's struct order; maps inside are sorted, as Go marshals them.
  const header = goMarshal({
    kind: CACHE_KIND,
    containerId: rt.containerId,
    config: Buffer.from(configBytes, 'utf8').toString('base64'),
    ifName: rt.ifname,
    networkName: network,
    netns: rt.netns || undefined,
    cniArgs: rt.args.length > 0 ? rt.args : undefined,
  }, { sortKeys: false });
  const tail = [
    hasCaps ? `"capabilityArgs":${goMarshal(rt.capabilityArgs)}` : '',
    Object.keys(result).length > 0 ? `"result":${goMarshal(result)}` : '',
  ].filter(Boolean);
  return tail.length ? `${header.slice(0, -1)},${tail.join(',')}}` : header;
}

/** Writes atomically (temp + rename), 0600 in a 0700 directory, as libcni's modes. */
export function writeCacheEntry(cacheDir: string, network: string, configBytes: string, rt: RuntimeConf, result: Record<string, unknown>): string {
  const file = cacheFile(cacheDir, network, rt);
  writeFileAtomic(file, formatCacheEntry(network, configBytes, rt, result));
  return file;
}

export function removeCacheEntry(cacheDir: string, network: string, rt: RuntimeConf): void {
  rmSync(cacheFile(cacheDir, network, rt), { force: true });
}

/** Decodes one cache file; undefined when it is not a cniCacheV1 entry (libcni skips those). */
export function parseCacheEntry(text: string, file: string): CachedAttachment | undefined {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== 'object' || raw.kind !== CACHE_KIND) return undefined;
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const args = Array.isArray(raw.cniArgs)
    ? raw.cniArgs.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string'))
    : undefined;
  return {
    kind: CACHE_KIND,
    containerId: s(raw.containerId),
    config: Buffer.from(s(raw.config), 'base64').toString('utf8'),
    ifName: s(raw.ifName),
    networkName: s(raw.networkName),
    netns: s(raw.netns) || undefined,
    cniArgs: args,
    capabilityArgs: obj(raw.capabilityArgs),
    result: obj(raw.result),
    file,
  };
}

/** The cached entry of one attachment; undefined when there is none. Throws when it is corrupt. */
export function readCacheEntry(cacheDir: string, network: string, rt: RuntimeConf): CachedAttachment | undefined {
  const file = cacheFile(cacheDir, network, rt);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const entry = parseCacheEntry(text, file);
  if (!entry) throw new Error(`failed to read cached network "${network}" result from ${file}: not a ${CACHE_KIND} entry`);
  return entry;
}

/** Every cached attachment (libcni's GetCachedAttachments), sorted by file name. */
export function listCachedAttachments(cacheDir: string): CachedAttachment[] {
  const dir = join(cacheDir, 'results');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: CachedAttachment[] = [];
  for (const name of names) {
    if (name.includes('.tmp-')) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const entry = parseCacheEntry(text, join(dir, name));
    if (entry && entry.ifName && entry.networkName) out.push(entry);
  }
  return out;
}
