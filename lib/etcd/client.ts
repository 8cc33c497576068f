import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

/**
 * A small etcd v3 client over the JSON gateway (`/v3/...`), on node:http(s): no dependency, one
 * keep-alive agent per client. Keys and values are strings here; base64 is the wire's business.
 */

export interface EtcdTls {
  trustedCAFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
}

export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

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

type RawKv = { key?: string; value?: string; create_revision?: string; mod_revision?: string; lease?: string };

function toKv(raw: RawKv): KeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: Number(raw.create_revision ?? 0),
    modRevision: Number(raw.mod_revision ?? 0),
    lease: raw.lease ?? '0',
  };
}

/** Encodes a range end that may hold non-UTF-8 bytes (prefixEnd works in latin1). */
const rangeEnd = (end: string) => Buffer.from(end, 'latin1').toString('base64');

export interface EtcdClientOptions extends EtcdTls {
  endpoints: readonly string[];
  /** Per-request timeout in ms (not applied to watch streams). */
  timeoutMs?: number;
}

export class EtcdClient {
  private readonly endpoints: URL[];
  private current = 0;
  private readonly timeoutMs: number;
  private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private agents: { http?: import('node:http').Agent; https?: import('node:https').Agent } = {};

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new EtcdError('no etcd endpoints');
    this.endpoints = options.endpoints.map((e) => new URL(e));
    this.timeoutMs = options.timeoutMs ?? 5000;
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
        collect(res).then(
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
    const text = await collect(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new EtcdError(`etcd ${path}: unreadable response ${JSON.stringify(text.slice(0, 200))}`);
    }
  }

  /** Every key under `prefix`, and the store revision it was read at. */
  async rangePrefix(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call<{ header?: { revision?: string }; kvs?: RawKv[] }>('/v3/kv/range', { key: b64(prefix), range_end: rangeEnd(prefixEnd(prefix)) });
    return { kvs: (r.kvs ?? []).map(toKv), revision: Number(r.header?.revision ?? 0) };
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
   * Watches every key under `prefix` from `fromRevision` over one long-lived streaming request.
   * `onEvents` gets each batch; the promise settles when the stream ends (etcd restarted, the
   * signal aborted): the caller re-reads and watches again.
   */
  async watchPrefix(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[], revision: number) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.open('/v3/watch', { create_request: { key: b64(prefix), range_end: rangeEnd(prefixEnd(prefix)), start_revision: String(fromRevision) } }, undefined);
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      const onAbort = () => res.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) res.destroy();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const msg = JSON.parse(line) as { result?: { header?: { revision?: string }; events?: { type?: string; kv?: RawKv }[]; canceled?: boolean; compact_revision?: string }; error?: unknown };
          if (msg.error || msg.result?.canceled) {
            res.destroy();
            return reject(new EtcdError(`etcd watch ended: ${JSON.stringify(msg.error ?? msg.result)}`));
          }
          const events = msg.result?.events;
          if (events?.length) {
            onEvents(
              events.map((e) => ({ type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: toKv(e.kv ?? {}) })),
              Number(msg.result?.header?.revision ?? 0),
            );
          }
        }
      });
      res.on('end', () => resolve());
      res.on('close', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      res.on('error', (err) => (signal?.aborted ? resolve() : reject(err)));
    });
  }

  close(): void {
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    this.agents = {};
  }
}

function collect(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function errorMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { message?: string; error?: string };
    return v.message ?? v.error ?? text;
  } catch {
    return text.slice(0, 200);
  }
}
