import { readFileSync } from 'node:fs';
import type { PeerSource } from './conf.ts';
import type { PeerInput } from './peers.ts';

/**
 * Peer entries from a source the config holds or names (inline list, peers file); etcd entries
 * come with the lease. An error instead of entries when the file cannot be used (see filePeers).
 */
export type LocalPeers = { inputs: PeerInput[] } | { error: string };

export function localPeers(source: Exclude<PeerSource, { kind: 'etcd' }>): LocalPeers {
  if (source.kind === 'file') return filePeers(source.path);
  return { inputs: source.entries.map((entry, i) => ({ origin: `peers[${i}]`, entry })) };
}

/**
 * Peer entries from a peers file: a JSON array of `{subnet, ip, mac?}` or `{"peers": [...]}`.
 * Returns an error instead of an empty list when the file cannot be used: an unreadable file must
 * leave the current routes alone, not remove them all.
 */
function filePeers(path: string): LocalPeers {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { error: `cannot read peers file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { error: `peers file ${path} is not JSON: ${(err as Error).message}` };
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as { peers?: unknown }).peers) ? (doc as { peers: unknown[] }).peers : undefined;
  if (!list) return { error: `peers file ${path} must hold an array of peers or {"peers": [...]}` };
  return { inputs: list.map((entry, i) => ({ origin: `${path}#${i}`, entry })) };
}
