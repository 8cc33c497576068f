import { readFileSync } from 'node:fs';
import type { PeerInput } from './peers.ts';

/** Peer entries from the config's inline list. */
export const inlinePeers = (entries: readonly unknown[]): PeerInput[] => entries.map((entry, i) => ({ origin: `peers[${i}]`, entry }));

/**
 * Peer entries from a peers file: a JSON array of `{subnet, ip, mac?}` or `{"peers": [...]}`.
 * Returns an error instead of an empty list when the file cannot be used: an unreadable file must
 * leave the current routes alone, not remove them all.
 */
export function filePeers(path: string): { inputs: PeerInput[] } | { error: string } {
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
