import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdClient, EtcdCompactedError, EtcdError, EtcdWatchCancelled, type WatchEvent } from '../../lib/etcd/client.ts';
import { lines } from '../../lib/etcd/lines.ts';
import { parseWatchMessage } from '../../lib/etcd/watch-message.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const kv = (key: string, value: string, rev: number) => ({ key: b64(key), value: b64(value), create_revision: String(rev), mod_revision: String(rev) });
const eventLine = (key: string, value: string, rev: number) => JSON.stringify({ result: { header: { revision: String(rev) }, events: [{ kv: kv(key, value, rev) }] } }) + '\n';

async function collectLines(chunks: (string | Buffer)[], max = 1 << 20): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines(Readable.from(chunks), max)) out.push(line);
  return out;
}

describe('lines', () => {
  it('splits on newlines across chunks, even inside a multi-byte character, and drops a cut tail', async () => {
    const euro = Buffer.from('€');
    expect(await collectLines(['{"a":', '1}\n\n{"b"', Buffer.concat([Buffer.from(':"'), euro.subarray(0, 1)]), Buffer.concat([euro.subarray(1), Buffer.from('"}\n{"cut')])])).toEqual(['{"a":1}', '{"b":"€"}']);
  });

  it('refuses a line longer than the cap instead of buffering it', async () => {
    await expect(collectLines(['x'.repeat(40), 'y'.repeat(40)], 64)).rejects.toThrow(/longer than 64 bytes/);
    await expect(collectLines(['x'.repeat(70) + '\n'], 64)).rejects.toThrow(EtcdError);
  });
});

describe('parseWatchMessage', () => {
  it('decodes events and the revision', () => {
    expect(parseWatchMessage(eventLine('/k', 'v', 7))).toEqual({ revision: 7, events: [{ type: 'PUT', kv: { key: '/k', value: 'v', createRevision: 7, modRevision: 7, lease: '0' } }] });
    expect(parseWatchMessage('{"result":{"header":{"revision":"3"},"created":true}}')).toEqual({ revision: 3, events: [] });
  });

  it('turns garbage, null and wrong shapes into an EtcdError, never a TypeError', () => {
    for (const bad of ['{"result":{"events":[{"kv"', 'null', '[]', '42', '{"result":null}', '{"result":{"events":{}}}', '{"result":{"events":[null]}}', '{"result":{"header":{"revision":"x"}}}']) {
      expect(() => parseWatchMessage(bad), bad).toThrow(EtcdError);
    }
  });

  it('tells a compacted revision and a cancel apart from garbage', () => {
    expect(() => parseWatchMessage('{"result":{"canceled":true,"compact_revision":"12"}}')).toThrow(EtcdCompactedError);
    expect(() => parseWatchMessage('{"result":{"canceled":true,"cancel_reason":"no"}}')).toThrow(EtcdWatchCancelled);
    expect(() => parseWatchMessage('{"error":{"grpc_code":14}}')).toThrow(EtcdWatchCancelled);
  });
});

/** A fake JSON gateway on loopback: `handle` answers each request with its parsed body. */
async function fakeEtcd(handle: (path: string, body: any, res: ServerResponse) => void) {
  const requests: { path: string; body: any }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const body = JSON.parse(text);
      requests.push({ path: req.url!, body });
      handle(req.url!, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))) };
}

describe('EtcdClient against a fake gateway', () => {
  const closers: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('pages a prefix with limit, continuing after the last key, at the first page revision', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `/p/k${String(i).padStart(2, '0')}`);
    const etcd = await fakeEtcd((_path, body, res) => {
      const from = Buffer.from(body.key, 'base64').toString();
      const rest = keys.filter((k) => k >= from);
      const page = rest.slice(0, Number(body.limit));
      res.end(JSON.stringify({ header: { revision: '40' }, kvs: page.map((k) => kv(k, 'v', 5)), more: rest.length > page.length, count: String(rest.length) }));
    });
    closers.push(etcd.close);
    const client = new EtcdClient({ endpoints: [etcd.url], pageKeys: 3 });
    closers.push(() => client.close());
    const { kvs, revision } = await client.rangePrefix('/p/');
    expect(kvs.map((k) => k.key)).toEqual(keys);
    expect(revision).toBe(40);
    expect(etcd.requests.map((r) => [Buffer.from(r.body.key, 'base64').toString(), r.body.limit, r.body.revision])).toEqual([
      ['/p/', '3', undefined],
      ['/p/k02\0', '3', '40'],
      ['/p/k05\0', '3', '40'],
      ['/p/k08\0', '3', '40'],
    ]);
  });

  it('refuses a response larger than the cap', async () => {
    const etcd = await fakeEtcd((_path, _body, res) => res.end(JSON.stringify({ kvs: [kv('/a', 'x'.repeat(4096), 1)] })));
    closers.push(etcd.close);
    const client = new EtcdClient({ endpoints: [etcd.url], maxResponseBytes: 1024 });
    closers.push(() => client.close());
    await expect(client.get('/a')).rejects.toThrow(/larger than 1024 bytes/);
  });

  it('resumes a watch after a garbage line and after a cut, from the last event read', async () => {
    let watches = 0;
    const etcd = await fakeEtcd((_path, _body, res) => {
      res.write('{"result":{"header":{"revision":"9"},"created":true}}\n');
      watches++;
      if (watches === 1) return res.end(eventLine('/w/a', '1', 10) + 'null\n' + eventLine('/w/lost', '1', 11));
      if (watches === 2) return res.write(eventLine('/w/b', '1', 12), () => res.destroy());
      res.write(eventLine('/w/c', '1', 13));
    });
    closers.push(etcd.close);
    const client = new EtcdClient({ endpoints: [etcd.url] });
    closers.push(() => client.close());
    const stop = new AbortController();
    const seen: WatchEvent[] = [];
    const resumes: [string, number][] = [];
    await client.watchPrefix('/w/', 5, (events) => (seen.push(...events), seen.length === 3 && stop.abort()), { signal: stop.signal, onResume: (reason, from) => resumes.push([reason, from]) });
    expect(seen.map((e) => e.kv.key)).toEqual(['/w/a', '/w/b', '/w/c']);
    expect(etcd.requests.map((r) => r.body.create_request.start_revision)).toEqual(['5', '11', '13']);
    expect(resumes[0]).toEqual(['not a watch message: null', 11]);
    expect(resumes[1]![1]).toBe(13);
  });

  it('ends the watch with EtcdCompactedError when its revision was compacted', async () => {
    const etcd = await fakeEtcd((_path, _body, res) => res.end('{"result":{"header":{"revision":"50"},"created":true}}\n{"result":{"header":{"revision":"50"},"canceled":true,"compact_revision":"40"}}\n'));
    closers.push(etcd.close);
    const client = new EtcdClient({ endpoints: [etcd.url] });
    closers.push(() => client.close());
    await expect(client.watchPrefix('/w/', 5, () => {})).rejects.toThrow(EtcdCompactedError);
  });
});
