import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OUR_BIN } from '../support/paths.ts';
import { runAsync, type AsyncRun } from '../support/run-async.ts';
import { Scope, sh } from '../support/scope.ts';
import { DEVICE, kernelState, loneNode, peer } from '../support/vxlan-node.ts';

/**
 * Every writer of a node's peer entries (an ADD whose inputs changed, `sync`, each `sync --watch`
 * event) reads what is applied and writes the applied record under one lock per device, so
 * overlapping writers never leave a record that describes a peer set the kernel does not hold.
 * The check: a plain `sync` (which trusts the record) leaves the kernel exactly as `sync --full`
 * (which reads the kernel) then finds it.
 */

const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' });

interface Node {
  ns: string;
  stateDir: string;
  /** One conf per peers file, all on the same device and state dir. */
  confs: Record<string, { file: string; conf: Record<string, unknown> }>;
}

function makeNode(s: Scope, peerFiles: Record<string, string>): Node {
  const ns = loneNode(s, 'k');
  const dir = s.tmpdir();
  const stateDir = join(dir, 'state');
  const confs: Node['confs'] = {};
  for (const [tag, peersFile] of Object.entries(peerFiles)) {
    const conf = { cniVersion: '1.0.0', name: 'overlay', type: 'vxlan', network: '10.0.0.0/8', subnet: '10.244.1.0/24', peersFile, stateDir, ipam: { dataDir: join(dir, 'ipam') } };
    const file = join(dir, `overlay-${tag}.conf`);
    writeFileSync(file, JSON.stringify(conf));
    confs[tag] = { file, conf };
  }
  return { ns, stateDir, confs };
}

function runInNode(node: Node, argv: string[], env: Record<string, string> = {}, input?: string, delayMs = 0): Promise<AsyncRun> {
  return runAsync(['ip', 'netns', 'exec', node.ns, ...argv], { env: { ...baseEnv(), ...env }, input, delayMs });
}

const syncArgv = (node: Node, tag: string, ...flags: string[]) => [join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--conf', node.confs[tag]!.file, ...flags];

function sync(node: Node, tag: string, ...flags: string[]): Record<string, unknown> {
  const r = spawnSync('ip', ['netns', 'exec', node.ns, ...syncArgv(node, tag, ...flags)], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

function add(node: Node, tag: string, pod: { path: string }, id: string, ifname: string, delayMs = 0): Promise<AsyncRun> {
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: ifname, CNI_PATH: OUR_BIN };
  return runInNode(node, [join(OUR_BIN, 'vxlan')], env, JSON.stringify(node.confs[tag]!.conf), delayMs);
}

/** The twin check: what a plain sync (trusting the record) leaves is what --full (reading the kernel) leaves. */
function expectRecordTrue(node: Node, tag: string, what: string): void {
  sync(node, tag);
  const afterPlain = kernelState(node.ns);
  const full = sync(node, tag, '--full');
  expect(kernelState(node.ns), what).toEqual(afterPlain);
  expect(full, what).toMatchObject({ changed: 0, removed: 0, diff: 'kernel' });
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => peer(from + i));

const stateFiles = (node: Node) => (existsSync(node.stateDir) ? readdirSync(node.stateDir).sort() : []);

/** A process that is certainly gone (started and reaped). */
const deadPid = () => spawnSync('true').pid!;

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('vxlan: one writer at a time per device (the applied record stays true)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('overlapping syncs and ADDs with different peer versions never leave a stale record', async () => {
    const dir = s.tmpdir();
    const files = { a: join(dir, 'a.json'), b: join(dir, 'b.json'), c: join(dir, 'c.json') };
    // three versions that overlap in part (joins and leaves between any two), so every writer has work
    writeFileSync(files.a, JSON.stringify(range(0, 30)));
    writeFileSync(files.b, JSON.stringify(range(10, 40)));
    writeFileSync(files.c, JSON.stringify(range(20, 50)));
    const node = makeNode(s, files);
    expect(sync(node, 'c')).toMatchObject({ peers: 30, diff: 'kernel' });

    for (let round = 0; round < 40; round++) {
      // each round starts from C applied; a sync (diffing against the record) and an ADD (reading
      // the kernel: its inputs are not the record's) of two other versions overlap
      const [syncTag, addTag] = round % 2 ? ['b', 'a'] : ['a', 'b'];
      const [synced, added] = await Promise.all([runInNode(node, syncArgv(node, syncTag)), add(node, addTag, s.netns('p'), s.name('c'), 'eth0', round % 7)]);
      expect(synced.status, synced.stderr).toBe(0);
      expect(added.status, added.stdout + added.stderr).toBe(0);
      expect(stateFiles(node), `round ${round}`).not.toContain(`${DEVICE}.lock`);
      expectRecordTrue(node, 'c', `round ${round} (sync ${syncTag}, ADD ${addTag})`);
    }

    // teardown leaves no state, record or lock behind
    const r = spawnSync('ip', ['netns', 'exec', node.ns, join(OUR_BIN, 'tscni'), 'vxlan', 'teardown', '--conf', node.confs.c!.file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(stateFiles(node)).toEqual([]);
  });

  it('a watch event finds the record changed by another writer and reconciles from the kernel', async () => {
    const dir = s.tmpdir();
    const files = { w: join(dir, 'w.json'), x: join(dir, 'x.json') };
    writeFileSync(files.w, JSON.stringify(range(0, 10)));
    writeFileSync(files.x, JSON.stringify(range(20, 30)));
    const node = makeNode(s, files);
    const watcher: ChildProcess = spawn('ip', ['netns', 'exec', node.ns, ...syncArgv(node, 'w', '--watch')], { env: baseEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    s.defer(() => watcher.exitCode === null && watcher.kill('SIGKILL'));
    let log = '';
    watcher.stderr!.on('data', (d) => (log += d));
    await until('first sync', () => log.includes('"synced"'));

    // another writer applies other peers behind the watcher's back
    expect(sync(node, 'x')).toMatchObject({ changed: 10, removed: 30 });
    // one more peer in the watched file: the event must not apply W→W' on top of X
    const wider = range(0, 11);
    writeFileSync(files.w, JSON.stringify(wider));
    const routes = () => (JSON.parse(sh(['ip', '-n', node.ns, '-json', 'route', 'show', 'dev', DEVICE])) as { dst: string; gateway?: string }[]).filter((r) => r.gateway).map((r) => r.dst).sort();
    await until('the event is applied', () => routes().includes(peer(10).subnet));
    expect(routes()).toEqual(wider.map((p) => p.subnet).sort());
    watcher.kill('SIGTERM');
    await until('watcher exits', () => watcher.exitCode !== null);
    expect(watcher.exitCode).toBe(0);
    expect(stateFiles(node)).not.toContain(`${DEVICE}.lock`);
    expectRecordTrue(node, 'w', 'after the watch event');
  });

  it('takes over a lock whose holder is dead (SIGKILL) and keeps the record', () => {
    const dir = s.tmpdir();
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify(range(0, 5)));
    const node = makeNode(s, { a: file });
    mkdirSync(node.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(node.stateDir, `${DEVICE}.lock`), `${deadPid()}\n`, { mode: 0o600 });
    expect(sync(node, 'a')).toMatchObject({ peers: 5, changed: 5, diff: 'kernel' });
    expect(stateFiles(node)).toEqual([`${DEVICE}.applied`, `${DEVICE}.json`]);

    // and with a record in place: the next one-change sync still diffs against it
    writeFileSync(join(node.stateDir, `${DEVICE}.lock`), `${deadPid()}\n`, { mode: 0o600 });
    writeFileSync(file, JSON.stringify(range(0, 6)));
    expect(sync(node, 'a')).toMatchObject({ changed: 1, diff: 'state' });
    expect(stateFiles(node)).toEqual([`${DEVICE}.applied`, `${DEVICE}.json`]);
    expectRecordTrue(node, 'a', 'after the takeover');
  });

  it('a lock held by a live process past the wait bound: the sync and an ADD still succeed and leave no record', async () => {
    const dir = s.tmpdir();
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify(range(0, 5)));
    const node = makeNode(s, { a: file });
    sync(node, 'a');
    expect(stateFiles(node)).toContain(`${DEVICE}.applied`);
    const holder = spawn('sleep', ['120'], { stdio: 'ignore' });
    s.defer(() => holder.kill('SIGKILL'));
    const lock = join(node.stateDir, `${DEVICE}.lock`);

    writeFileSync(lock, `${holder.pid}\n`, { mode: 0o600 });
    writeFileSync(file, JSON.stringify(range(0, 7)));
    // without the lock it must not trust the record: it reads the kernel
    expect(sync(node, 'a')).toMatchObject({ changed: 2, diff: 'kernel' });
    expect(stateFiles(node)).toEqual([`${DEVICE}.json`]);
    expect(sync(node, 'a')).toMatchObject({ changed: 0, diff: 'kernel' }); // no record: the kernel is read
    expect(stateFiles(node)).toEqual([`${DEVICE}.applied`, `${DEVICE}.json`]);

    // an ADD whose inputs changed waits as long, then reconciles without writing a record
    writeFileSync(lock, `${holder.pid}\n`, { mode: 0o600 });
    writeFileSync(file, JSON.stringify(range(0, 8)));
    const pod = s.netns('p');
    const added = await add(node, 'a', pod, s.name('c'), 'eth0');
    expect(added.status, added.stdout + added.stderr).toBe(0);
    expect(stateFiles(node)).not.toContain(`${DEVICE}.applied`);
    expect(stateFiles(node)).not.toContain(`${DEVICE}.lock`);
    expectRecordTrue(node, 'a', 'after the ADD');
  });
});
