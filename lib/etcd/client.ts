import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { EtcdCompactedError, EtcdError, EtcdWatchCancelled } from './errors.ts';
import { b64, toKv, type KeyValue, type RawKv, type WatchEvent } from './kv.ts';
import { lines } from './lines.ts';
import { parseWatchMessage, type WatchMessage } from './watch-message.ts';

export { EtcdCompactedError, EtcdError, EtcdWatchCancelled } from './errors.ts';
export type { KeyValue, WatchEvent } from './kv.ts';

/**
 * A small etcd v3 client over the JSON gateway (`/v3/...`), on node:http(s): no dependency, one
 * keep-alive agent per client. Keys and values are strings here; base64 is the wire's business.
 */

export interface EtcdTls {
  trustedCAFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** The end of the key range holding every key that starts with `prefix`. */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = bytes.subarray(0, i + 1);
      end[i]! += 1;
      return end.toString('latin1');
    }
  }
  return '\0';
}

/** Encodes a range end that may hold non-UTF-8 bytes (prefixEnd works in latin1). */
const rangeEnd = (end: string) => Buffer.from(end, 'latin1').toString('base64');

/**
 * Sized for a prefix of ~1,200 values of a few KB (1,000 pods and 200 policies): a range reads at
 * most PAGE_KEYS keys a request (~1.4 MB at 4 KB a value, base64), and no response or watch
 * message may exceed MAX_RESPONSE_BYTES, so a runaway value cannot exhaust the process.
 */
const PAGE_KEYS = 256;
const MAX_RESPONSE_BYTES = 16 << 20;

export interface EtcdClientOptions extends EtcdTls {
  endpoints: readonly string[];
  /** Per-request timeout in ms (not applied to watch streams). */
  timeoutMs?: number;
  /** Keys per range request (rangePrefix pages through larger prefixes). */
  pageKeys?: number;
  /** Bytes one response (or one watch message) may have. */
  maxResponseBytes?: number;
}

export interface WatchOptions {
  signal?: AbortSignal | undefined;
  /** Told when a cut stream or an unreadable message makes the watch resume from `fromRevision`. */
  onResume?: ((reason: string, fromRevision: number) => void) | undefined;
}

const RESUME_FIRST_MS = 250;
const RESUME_MAX_MS = 5000;

export class EtcdClient {
  private readonly endpoints: URL[];
  private current = 0;
  private readonly timeoutMs: number;
  private readonly pageKeys: number;
  private readonly maxResponseBytes: number;
  private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private agents: { http?: import('node:http').Agent; https?: import('node:https').Agent } = {};

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new EtcdError('no etcd endpoints');
    this.endpoints = options.endpoints.map((e) => new URL(e));
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.pageKeys = options.pageKeys ?? PAGE_KEYS;
    this.maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.tls = {
      ...(options.trustedCAFile ? { ca: readFileSync(options.trustedCAFile) } : {}),
      ...(options.certFile ? { cert: readFileSync(options.certFile) } : {}),
      ...(options.keyFile ? { key: readFileSync(options.keyFile) } : {}),
    };
  }

  private async transport(url: URL) {
    if (url.protocol === 'https:') {
      const https = await import('node:https');
      this.agents.https ??= new https.Agent({ keepAlive: true, ...this.tls });
      return { request: https.request, agent: this.agents.https };
    }
    const http = await import('node:http');
    this.agents.http ??= new http.Agent({ keepAlive: true });
    return { request: http.request, agent: this.agents.http };
  }

  /** Opens a POST to the current endpoint; on a connection error tries the next one. */
  private async open(path: string, body: unknown, timeoutMs: number | undefined): Promise<IncomingMessage> {
    let lastError: unknown;
    for (let tried = 0; tried < this.endpoints.length; tried++) {
      const base = this.endpoints[this.current]!;
      try {
        return await this.openOne(new URL(path, base), body, timeoutMs);
      } catch (err) {
        if (err instanceof EtcdError && err.status !== undefined) throw err;
        lastError = err;
        this.current = (this.current + 1) % this.endpoints.length;
      }
    }
    throw new EtcdError(`etcd unreachable (${this.endpoints.map(String).join(', ')}): ${(lastError as Error)?.message ?? lastError}`);
  }

  private async openOne(url: URL, body: unknown, timeoutMs: number | undefined): Promise<IncomingMessage> {
    const { request, agent } = await this.transport(url);
    const data = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
        if (res.statusCode === 200) return resolve(res);
        collect(res, 64 << 10).then(
          (text) => reject(new EtcdError(`etcd ${url.pathname}: HTTP ${res.statusCode}: ${errorMessage(text)}`, res.statusCode)),
          reject,
        );
      });
      if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    const res = await this.open(path, body, this.timeoutMs);
    const text = await collect(res, this.maxResponseBytes).catch((err: unknown) => {
      throw err instanceof EtcdError ? new EtcdError(`etcd ${path}: ${err.message}`) : err;
    });
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new EtcdError(`etcd ${path}: unreadable response ${JSON.stringify(text.slice(0, 200))}`);
    }
  }

  /**
   * Every key under `prefix`, and the store revision it was read at: read in pages of `pageKeys`,
   * each continuing after the last key of the one before, all at the first page's revision (one
   * consistent snapshot; a compaction in between fails the read, and the caller reads again).
   */
  async rangePrefix(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const end = rangeEnd(prefixEnd(prefix));
    const kvs: KeyValue[] = [];
    let from = b64(prefix);
    let revision: number | undefined;
    for (;;) {
      const r = await this.call<{ header?: { revision?: string }; kvs?: RawKv[]; more?: boolean }>('/v3/kv/range', {
        key: from,
        range_end: end,
        limit: String(this.pageKeys),
        ...(revision ? { revision: String(revision) } : {}),
      });
      revision ??= Number(r.header?.revision ?? 0);
      const page = r.kvs ?? [];
      kvs.push(...page.map(toKv));
      const last = page.at(-1)?.key;
      if (!r.more || !last) return { kvs, revision };
      // the smallest key after `last`: `last` followed by a zero byte
      from = Buffer.concat([Buffer.from(last, 'base64'), Buffer.of(0)]).toString('base64');
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) });
    return r.kvs?.[0] ? toKv(r.kvs[0]) : undefined;
  }

  /**
   * Writes `key` only if it is absent (`createRevision` 0) or still at `modRevision`: a
   * compare-and-swap. Returns whether it was written and, if not, the value that won.
   */
  async putIf(key: string, value: string, lease: string | undefined, expect: { absent: true } | { modRevision: number }): Promise<{ ok: boolean; current?: KeyValue }> {
    const compare =
      'absent' in expect
        ? { key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }
        : { key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(expect.modRevision) };
    const r = await this.call<{ succeeded?: boolean; responses?: { response_range?: { kvs?: RawKv[] } }[] }>('/v3/kv/txn', {
      compare: [compare],
      success: [{ request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) } }],
      failure: [{ request_range: { key: b64(key) } }],
    });
    if (r.succeeded) return { ok: true };
    const kv = r.responses?.[0]?.response_range?.kvs?.[0];
    return { ok: false, ...(kv ? { current: toKv(kv) } : {}) };
  }

  async delete(key: string): Promise<number> {
    const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key) });
    return Number(r.deleted ?? 0);
  }

  /** A new lease of `ttl` seconds; its ID as etcd writes it (a decimal string). */
  async grant(ttl: number): Promise<string> {
    const r = await this.call<{ ID?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttl) });
    if (!r.ID) throw new EtcdError(`etcd lease grant failed: ${r.error ?? 'no ID'}`);
    return r.ID;
  }

  /** Refreshes a lease once; false when etcd no longer knows it (expired or revoked). */
  async keepAlive(id: string): Promise<boolean> {
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id });
    return Number(r.result?.TTL ?? 0) > 0;
  }

  async revoke(id: string): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: id });
    } catch (err) {
      if (!(err instanceof EtcdError && /lease not found/.test(err.message))) throw err;
    }
  }

  /**
   * Watches every key under `prefix` from `fromRevision` until `signal` aborts, over one
   * long-lived streaming request; `onEvents` gets each batch. A cut stream or an unreadable
   * message is resumed after the last event read (nothing lost, nothing twice), with a growing
   * pause. Throws EtcdCompactedError when that revision is compacted (read the prefix again),
   * and EtcdError when etcd cannot be reached or cancels the watch.
   */
  async watchPrefix(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[], revision: number) => void, options: WatchOptions = {}): Promise<void> {
    const { signal, onResume } = options;
    let next = fromRevision;
    let pause = RESUME_FIRST_MS;
    while (!signal?.aborted) {
      const res = await this.open('/v3/watch', { create_request: { key: b64(prefix), range_end: rangeEnd(prefixEnd(prefix)), start_revision: String(next) } }, undefined);
      const onAbort = () => res.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      const messages = lines(res, this.maxResponseBytes);
      let reason = 'etcd ended the watch stream';
      try {
        for (;;) {
          let msg: WatchMessage;
          try {
            const line = await messages.next();
            if (line.done) break;
            msg = parseWatchMessage(line.value);
          } catch (err) {
            if (signal?.aborted) return;
            if (err instanceof EtcdCompactedError || err instanceof EtcdWatchCancelled) throw err;
            reason = (err as Error).message; // cut, unreadable or oversized: resumable
            break;
          }
          if (!msg.events.length) continue;
          onEvents(msg.events, msg.revision);
          next = Math.max(next, msg.events.at(-1)!.kv.modRevision + 1);
          pause = RESUME_FIRST_MS;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        res.destroy();
      }
      if (signal?.aborted) return;
      onResume?.(reason, next);
      await pauseFor(pause, signal);
      pause = Math.min(pause * 2, RESUME_MAX_MS);
    }
  }

  close(): void {
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    this.agents = {};
  }
}

async function collect(res: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      res.destroy();
      throw new EtcdError(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const pauseFor = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const done = () => (clearTimeout(t), signal?.removeEventListener('abort', done), resolve());
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

function errorMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { message?: string; error?: string };
    return v.message ?? v.error ?? text;
  } catch {
    return text.slice(0, 200);
  }
}
