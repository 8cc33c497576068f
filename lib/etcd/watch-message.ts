import { EtcdCompactedError, EtcdError, EtcdWatchCancelled } from './errors.ts';
import { toKv, type RawKv, type WatchEvent } from './kv.ts';

/** One message of the watch stream that carries what the watcher needs. */
export interface WatchMessage {
  revision: number;
  events: WatchEvent[];
}

type RawWatchResult = { header?: { revision?: unknown }; events?: unknown; canceled?: unknown; compact_revision?: unknown; cancel_reason?: unknown };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses one line of `/v3/watch` (untrusted bytes). Throws an EtcdError for anything that is not a
 * watch response (garbage, `null`, a bad event), EtcdCompactedError when etcd cancelled the watch
 * because its start revision is compacted, EtcdWatchCancelled for any other cancel or error.
 */
export function parseWatchMessage(line: string): WatchMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new EtcdError(`unreadable watch message ${JSON.stringify(line.slice(0, 120))}`);
  }
  if (isObject(msg) && msg.error !== undefined) throw new EtcdWatchCancelled(JSON.stringify(msg.error).slice(0, 200));
  if (!isObject(msg) || !isObject(msg.result)) throw new EtcdError(`not a watch message: ${line.slice(0, 120)}`);
  const result = msg.result as RawWatchResult;
  const compacted = Number(result.compact_revision ?? 0);
  if (compacted > 0) throw new EtcdCompactedError(compacted);
  if (result.canceled) throw new EtcdWatchCancelled(String(result.cancel_reason || 'no reason given'));
  const revision = Number(isObject(result.header) ? (result.header.revision ?? 0) : 0);
  if (!Number.isSafeInteger(revision) || revision < 0) throw new EtcdError(`watch message with a bad revision: ${line.slice(0, 120)}`);
  const raw = result.events ?? [];
  if (!Array.isArray(raw)) throw new EtcdError(`watch message with bad events: ${line.slice(0, 120)}`);
  const events = raw.map((e: unknown): WatchEvent => {
    if (!isObject(e) || !isObject(e.kv) || typeof e.kv.key !== 'string') throw new EtcdError(`watch event without a key: ${line.slice(0, 120)}`);
    return { type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: toKv(e.kv as RawKv) };
  });
  return { revision, events };
}
