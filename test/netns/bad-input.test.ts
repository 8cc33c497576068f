import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { groupMembers, runInGroup } from '../support/process-group.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/**
 * Bad input fed to the built binary (direct exec, as a runtime does). Each must give the right
 * code, a clear message, exit 1, one JSON error on stdout, and change nothing. The plugin runs
 * inside a "host" namespace of ours, so anything it did to its host would show there, and leads
 * its own process group, so any process it left running would show too.
 */

type Env = Record<string, string | undefined>;
/** What a case's config may name: made once per run, with the scope's unique names. */
interface Fixture {
  dataDir: string;
  bridge: string;
}
interface Case {
  name: string;
  /** The plugin to run (default loopback). */
  plugin?: string;
  env?: Env;
  stdin?: string | Buffer | Record<string, unknown> | ((f: Fixture) => Record<string, unknown>);
  code: number;
  msg: RegExp;
}

const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'lo-net', type: 'loopback', ...extra });
const raw = (text: string) => text;
const mb = (n: number) => n * 1024 * 1024;

const CASES: Case[] = [
  // bad JSON: code 6
  { name: 'empty stdin', stdin: raw(''), code: 6, msg: /^cannot decode network config/ },
  { name: 'truncated JSON', stdin: raw('{"cniVersion":"1.0.0","name":'), code: 6, msg: /^cannot decode network config/ },
  { name: 'trailing garbage', stdin: raw('{"cniVersion":"1.0.0","name":"n"}}'), code: 6, msg: /^cannot decode network config/ },
  { name: 'JSON null', stdin: raw('null'), code: 6, msg: /expected a JSON object/ },
  { name: 'JSON array', stdin: raw('[{"name":"n"}]'), code: 6, msg: /expected a JSON object/ },
  { name: 'JSON string', stdin: raw('"loopback"'), code: 6, msg: /expected a JSON object/ },
  { name: 'JSON number', stdin: raw('42'), code: 6, msg: /expected a JSON object/ },
  { name: 'single quotes', stdin: raw("{'name':'n'}"), code: 6, msg: /^cannot decode network config/ },
  { name: 'byte-order mark', stdin: raw('\ufeff{"cniVersion":"1.0.0","name":"n"}'), code: 6, msg: /^cannot decode network config/ },
  { name: 'YAML', stdin: raw('cniVersion: 1.0.0\nname: n\n'), code: 6, msg: /^cannot decode network config/ },
  { name: 'invalid UTF-8 bytes', stdin: Buffer.from([0xff, 0xfe, 0x7b]), code: 6, msg: /^cannot decode network config/ },
  // wrong types: code 7 naming the key
  { name: 'name missing', stdin: { cniVersion: '1.0.0', type: 'loopback' }, code: 7, msg: /at name: expected string, got nothing/ },
  { name: 'name empty', stdin: conf({ name: '' }), code: 7, msg: /at name: missing network name/ },
  { name: 'name a number', stdin: conf({ name: 7 }), code: 7, msg: /at name: expected string, got number/ },
  { name: 'name null', stdin: conf({ name: null }), code: 7, msg: /at name: expected string, got null/ },
  { name: 'name an object', stdin: conf({ name: { a: 1 } }), code: 7, msg: /at name: expected string, got object/ },
  { name: 'cniVersion a number', stdin: conf({ cniVersion: 1 }), code: 7, msg: /at cniVersion: expected string, got number/ },
  { name: 'type an array', stdin: conf({ type: ['loopback'] }), code: 7, msg: /at type: expected string, got array/ },
  { name: 'ipam a string', stdin: conf({ ipam: 'host-local' }), code: 7, msg: /at ipam: expected object, got string/ },
  { name: 'ipam.type a number', stdin: conf({ ipam: { type: 1 } }), code: 7, msg: /at ipam\.type: expected string, got number/ },
  { name: 'args a string', stdin: conf({ args: 'x' }), code: 7, msg: /at args: expected record, got string/ },
  { name: 'runtimeConfig an array', stdin: conf({ runtimeConfig: [] }), code: 7, msg: /at runtimeConfig: expected record, got array/ },
  { name: 'runtimeConfig a number', stdin: conf({ runtimeConfig: 5 }), code: 7, msg: /at runtimeConfig: expected record, got number/ },
  // prevResult that is no result: code 6
  { name: 'prevResult a string', stdin: conf({ prevResult: 'x' }), code: 6, msg: /^cannot decode result$/ },
  { name: 'prevResult ips not a list', stdin: conf({ prevResult: { cniVersion: '1.0.0', ips: 5 } }), code: 6, msg: /^cannot decode result$/ },
  { name: 'prevResult 0.2.0 ip4 without ip', stdin: conf({ cniVersion: '0.2.0', prevResult: { cniVersion: '0.2.0', ip4: {} } }), code: 6, msg: /^cannot decode result$/ },
  // unsupported versions: code 1
  ...['0.5.0', '2.0.0', '1.0', 'v1.0.0', '', '1.0.0 ', 'x'.repeat(200)].map((v) => ({
    name: `cniVersion ${JSON.stringify(v.slice(0, 12))}`,
    stdin: conf({ cniVersion: v }),
    code: 1,
    msg: /^incompatible CNI versions$/,
  })),
  { name: 'CHECK at 0.3.1', env: { CNI_COMMAND: 'CHECK' }, stdin: conf({ cniVersion: '0.3.1' }), code: 1, msg: /does not allow CHECK/ },
  { name: 'GC at 1.0.0', env: { CNI_COMMAND: 'GC' }, stdin: conf(), code: 1, msg: /does not allow GC/ },
  { name: 'STATUS at 0.4.0', env: { CNI_COMMAND: 'STATUS' }, stdin: conf({ cniVersion: '0.4.0' }), code: 1, msg: /does not allow STATUS/ },
  // bad env: code 4 naming the variable
  { name: 'no CNI_COMMAND', env: { CNI_COMMAND: undefined }, code: 4, msg: /\[CNI_COMMAND\] missing/ },
  { name: 'lower-case command', env: { CNI_COMMAND: 'add' }, code: 4, msg: /^unknown CNI_COMMAND: "add"$/ },
  { name: 'two commands', env: { CNI_COMMAND: 'ADD;DEL' }, code: 4, msg: /^unknown CNI_COMMAND/ },
  { name: 'no CNI_CONTAINERID', env: { CNI_CONTAINERID: undefined }, code: 4, msg: /\[CNI_CONTAINERID\] missing/ },
  { name: 'empty CNI_CONTAINERID', env: { CNI_CONTAINERID: '' }, code: 4, msg: /\[CNI_CONTAINERID\] missing/ },
  { name: 'no CNI_NETNS on ADD', env: { CNI_NETNS: undefined }, code: 4, msg: /\[CNI_NETNS\] missing/ },
  { name: 'no CNI_NETNS on CHECK', env: { CNI_COMMAND: 'CHECK', CNI_NETNS: '' }, code: 4, msg: /\[CNI_NETNS\] missing/ },
  { name: 'no CNI_IFNAME', env: { CNI_IFNAME: undefined }, code: 4, msg: /\[CNI_IFNAME\] missing/ },
  { name: 'no CNI_IFNAME on DEL', env: { CNI_COMMAND: 'DEL', CNI_IFNAME: undefined }, code: 4, msg: /\[CNI_IFNAME\] missing/ },
  { name: 'GC without CNI_PATH', env: { CNI_COMMAND: 'GC', CNI_PATH: undefined }, stdin: conf({ cniVersion: '1.1.0' }), code: 4, msg: /\[CNI_PATH\] missing/ },
  { name: 'STATUS without CNI_PATH', env: { CNI_COMMAND: 'STATUS', CNI_PATH: undefined }, stdin: conf({ cniVersion: '1.1.0' }), code: 4, msg: /\[CNI_PATH\] missing/ },
  { name: 'container ID starting with "-"', env: { CNI_CONTAINERID: '-rf' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID ".."', env: { CNI_CONTAINERID: '..' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID with a path', env: { CNI_CONTAINERID: 'a/../../etc/passwd' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID with a newline', env: { CNI_CONTAINERID: 'abc\nlink del lo' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID with a space', env: { CNI_CONTAINERID: 'abc def' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID with ";"', env: { CNI_CONTAINERID: 'abc;rm' }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID of 256 chars', env: { CNI_CONTAINERID: 'a'.repeat(256) }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'container ID of 100 kB', env: { CNI_CONTAINERID: 'a'.repeat(100_000) }, code: 4, msg: /\[CNI_CONTAINERID\]/ },
  { name: 'ifname of 16 chars', env: { CNI_IFNAME: 'eth0123456789012' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname of 10 kB', env: { CNI_IFNAME: 'e'.repeat(10_000) }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname "."', env: { CNI_IFNAME: '.' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname ".."', env: { CNI_IFNAME: '..' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname with "/"', env: { CNI_IFNAME: 'a/b' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname with ":"', env: { CNI_IFNAME: 'eth0:1' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname with a space', env: { CNI_IFNAME: 'lo up' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'ifname with a newline (batch injection)', env: { CNI_IFNAME: 'lo\nlink del lo' }, code: 4, msg: /\[CNI_IFNAME\]/ },
  { name: 'relative netns', env: { CNI_NETNS: 'run/netns/x' }, code: 4, msg: /\[CNI_NETNS\]/ },
  { name: 'netns with a newline', env: { CNI_NETNS: '/run/netns/x\nlink del lo' }, code: 4, msg: /\[CNI_NETNS\]/ },
  { name: 'netns of 5 kB', env: { CNI_NETNS: '/' + 'n'.repeat(5000) }, code: 4, msg: /\[CNI_NETNS\]/ },
  { name: 'CNI_ARGS of 100 kB', env: { CNI_ARGS: 'A=' + 'x'.repeat(100_000) }, code: 4, msg: /\[CNI_ARGS\]/ },
  { name: 'several bad variables at once', env: { CNI_CONTAINERID: '-x', CNI_IFNAME: 'a b' }, code: 4, msg: /\[CNI_CONTAINERID,CNI_IFNAME\]/ },
  // oversized config: code 5
  { name: '20 MB stdin', stdin: raw(JSON.stringify(conf({ pad: 'x'.repeat(mb(20)) }))), code: 5, msg: /^network config larger than 16777216 bytes$/ },
  // a namespace that is not there: code 3
  { name: 'netns that does not exist', env: { CNI_NETNS: '/run/netns/tscni-no-such-netns' }, code: 3, msg: /does not exist/ },
];

// ---- issue 13: the host's own namespace as CNI_NETNS ----
// The plugin runs inside the test's "host" namespace: /proc/self/ns/net, /proc/thread-self/ns/net and
// /run/netns/<host> all name the namespace it runs in. Each is refused with code 4 before anything is
// touched (the snapshot includes the host's lo, links, routes, rules and the IPAM store).
const OWN_NETNS = /^CNI_NETNS \S+ is the plugin's own network namespace, not a container's$/;
const bridgeConf = (f: Fixture, ipam: Record<string, unknown> = { type: 'host-local', dataDir: f.dataDir, subnet: '10.251.7.0/24' }) => ({
  cniVersion: '1.0.0',
  name: 'bad-input-net',
  type: 'bridge',
  bridge: f.bridge,
  isGateway: true,
  ipMasq: true,
  ipam,
});
const chainedPrev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [] };
const HOST_NETNS_CASES: Case[] = ['/proc/self/ns/net', '/proc/thread-self/ns/net', 'host'].flatMap((netns) => {
  const env = (command: string) => ({ CNI_COMMAND: command, CNI_NETNS: netns, CNI_IFNAME: command === 'ADD' || command === 'CHECK' ? 'eth0' : 'lo' });
  return [
    ...['ADD', 'DEL', 'CHECK'].map((command) => ({ name: `loopback ${command} in its own netns ${netns}`, env: env(command), stdin: conf({ prevResult: command === 'CHECK' ? chainedPrev : undefined }), code: 4, msg: OWN_NETNS })),
    ...['ADD', 'DEL'].map((command) => ({ name: `bridge ${command} in its own netns ${netns}`, plugin: 'bridge', env: env(command), stdin: (f: Fixture) => bridgeConf(f), code: 4, msg: OWN_NETNS })),
    ...['ADD', 'DEL'].map((command) => ({
      name: `tuning ${command} in its own netns ${netns}`,
      plugin: 'tuning',
      env: env(command),
      stdin: (f: Fixture) => ({ cniVersion: '1.0.0', name: 'bad-input-net', type: 'tuning', dataDir: f.dataDir, sysctl: { 'net.ipv4.conf.lo.forwarding': '1' }, mtu: 1280, prevResult: chainedPrev }),
      code: 4,
      msg: OWN_NETNS,
    })),
  ];
});

// ---- issue 13: no process outlives the plugin ----
// A bridge ADD whose IPAM fails at once used to exit while the `ip` it had started beside it still
// ran. Every case of the table checks the plugin's process group; these make that path likely.
const FAST_IPAM_FAILURES: Case[] = [
  { name: 'bridge with an unknown IPAM type', plugin: 'bridge', env: { CNI_IFNAME: 'eth0' }, stdin: (f) => bridgeConf(f, { type: 'no-such-ipam' }), code: 7, msg: /^failed to find plugin "no-such-ipam"/ },
  { name: 'bridge without CNI_PATH', plugin: 'bridge', env: { CNI_IFNAME: 'eth0', CNI_PATH: undefined }, stdin: (f) => bridgeConf(f), code: 7, msg: /^failed to find plugin "host-local" in path \[\]$/ },
  {
    name: 'bridge with a range outside its subnet',
    plugin: 'bridge',
    env: { CNI_IFNAME: 'eth0' },
    stdin: (f) => bridgeConf(f, { type: 'host-local', dataDir: f.dataDir, ranges: [[{ subnet: '10.251.7.0/24', rangeStart: '10.250.0.5' }]] }),
    code: 7,
    msg: /rangeStart 10\.250\.0\.5 not in network/,
  },
  { name: 'bridge with a bad requested IP', plugin: 'bridge', env: { CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;IP=bogus' }, stdin: (f) => bridgeConf(f), code: 7, msg: /^invalid IP address: bogus$/ },
  { name: 'bridge with a requested IP outside the range', plugin: 'bridge', env: { CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;IP=10.251.8.7' }, stdin: (f) => bridgeConf(f), code: 999, msg: /^failed to allocate all requested IPs: 10\.251\.8\.7$/ },
];

describe('bad input to the built binary', () => {
  const s = new Scope();
  let host: { name: string; path: string };
  let ctr: { name: string; path: string };
  let fixture: Fixture;
  afterAll(() => s.dispose());

  beforeAll(() => {
    host = s.netns('h');
    ctr = s.netns('c');
    fixture = { dataDir: s.tmpdir(), bridge: s.name('br') }; // the bridge would be made in `host`, gone with it
    sh(['ip', '-n', ctr.name, 'link', 'set', 'lo', 'down']); // an ADD that wrongly went ahead would bring it up
  });

  /** Everything the plugin could have touched: its host namespace, the container's, and named namespaces of ours. */
  const snapshot = () => ({
    hostLinks: ipJson(['addr', 'show'], host.name),
    hostRoutes: ipJson(['route', 'show', 'table', 'all'], host.name),
    ctrLinks: ipJson(['addr', 'show'], ctr.name),
    ctrRoutes: ipJson(['route', 'show', 'table', 'all'], ctr.name),
    ourNetns: readdirSync('/run/netns').filter((n) => n.includes(s.prefix)),
    hostRules: sh(['ip', 'netns', 'exec', host.name, 'iptables-save']).split('\n').filter((l) => !l.startsWith('#')),
    hostNft: sh(['ip', 'netns', 'exec', host.name, 'nft', 'list', 'ruleset']),
    store: readdirSync(fixture.dataDir, { recursive: true }),
  });

  function exec(c: Case) {
    const env: Env = { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${s.prefix}-ctr`, CNI_NETNS: ctr.path, CNI_IFNAME: 'lo', CNI_PATH: OUR_BIN, ...c.env };
    if (env.CNI_NETNS === 'host') env.CNI_NETNS = host.path;
    const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const stdin = typeof c.stdin === 'function' ? c.stdin(fixture) : c.stdin;
    const input = stdin === undefined ? JSON.stringify(conf()) : typeof stdin === 'string' || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin);
    return runInGroup(['nsenter', `--net=${host.path}`, join(OUR_BIN, c.plugin ?? 'loopback')], { env: clean, input });
  }

  it(`has at least 50 cases`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of [...CASES, ...HOST_NETNS_CASES, ...FAST_IPAM_FAILURES]) {
    it(`${c.name} → code ${c.code}`, async () => {
      const before = snapshot();
      const r = await exec(c);
      expect(r.leftBehind, 'no process of the plugin outlives it').toEqual([]);
      expect(r.status, r.stdout + r.stderr).toBe(1);
      const lines = r.stdout.trim().split('\n');
      expect(lines, 'one JSON error on stdout').toHaveLength(1);
      const err = JSON.parse(lines[0]!);
      expect(Object.keys(err).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k))).toEqual([]);
      expect(err.code).toBe(c.code);
      expect(err.msg).toMatch(c.msg);
      expect(err.msg.length, 'message is short enough to read').toBeLessThan(300);
      expect(snapshot()).toEqual(before);
    });
  }
});

// ---- issue 13: a runtime's timeout (SIGKILL) at any point of an ADD ----
describe('a bridge ADD killed by its runtime', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const clean = (env: Env) => Object.fromEntries(Object.entries({ PATH: process.env.PATH, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;

  function setup() {
    const host = s.netns('h');
    const dataDir = s.tmpdir();
    const name = `${s.prefix}-net`;
    const bridge = s.name('br'); // made inside `host`, gone with it
    const conf = { cniVersion: '1.1.0', name, type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir, subnet: '10.252.3.0/24' } };
    const run = (env: Env, input: unknown, kill?: Promise<unknown>) =>
      runInGroup(['nsenter', `--net=${host.path}`, join(OUR_BIN, 'bridge')], { env: clean({ CNI_PATH: OUR_BIN, CNI_IFNAME: 'eth0', ...env }), input: JSON.stringify(input), kill, graceMs: 5000 });
    const leftovers = () => ({
      veths: (JSON.parse(tryRun(['ip', '-n', host.name, '-json', 'link', 'show', 'master', bridge]).stdout || '[]') as { ifname: string }[]).map((l) => l.ifname),
      reservations: existsSync(join(dataDir, name)) ? readdirSync(join(dataDir, name)).filter((f) => /^[0-9]/.test(f)) : [],
      rules: sh(['ip', 'netns', 'exec', host.name, 'iptables-save', '-t', 'nat']).split('\n').filter((l) => l.includes(name)),
    });
    return { host, conf, run, leftovers };
  }

  it('leaves no process at any point, and DEL or GC repairs what it left', async () => {
    const { conf, run, leftovers } = setup();
    expect(leftovers()).toEqual({ veths: [], reservations: [], rules: [] });
    let killed = 0;
    for (let i = 0; i < 8; i++) {
      const ctr = s.netns('c');
      const id = s.name('id');
      const delay = i * 8 + Math.floor(Math.random() * 8); // from before bun has started to late in the ADD
      const add = await run({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: ctr.path }, conf, sleep(delay));
      expect(add.leftBehind, `ADD killed after ${delay} ms (${add.signal ?? `exit ${add.status}`})`).toEqual([]);
      if (add.signal === 'SIGKILL') killed++;
      // repair as a runtime would: DEL, or (sandbox gone) GC with no valid attachment
      const repair =
        i % 2 === 0
          ? await run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: id, CNI_NETNS: ctr.path }, conf)
          : (sh(['ip', 'netns', 'del', ctr.name]), await run({ CNI_COMMAND: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }));
      expect(repair.status, repair.stdout + repair.stderr).toBe(0);
      expect(repair.leftBehind).toEqual([]);
      if (i % 2 === 0) sh(['ip', 'netns', 'del', ctr.name]); // what a runtime does after DEL; the veth dies with it
      expect(leftovers(), `after ADD killed at ${delay} ms and ${i % 2 === 0 ? 'DEL' : 'GC'}`).toEqual({ veths: [], reservations: [], rules: [] });
    }
    expect(killed, 'ADDs that the kill caught while running').toBeGreaterThan(0);
  });

  it('a DEL given its own namespace releases the address and rules, touches no namespace, answers code 4', async () => {
    const { host, conf, run, leftovers } = setup();
    const ctr = s.netns('c');
    const id = s.name('id');
    const add = await run({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: ctr.path }, conf);
    expect(add.status, add.stdout).toBe(0);
    expect(leftovers().reservations).toHaveLength(1);
    expect(leftovers().rules.length).toBeGreaterThan(0);
    // links and their addresses, without what the kernel changes by itself (DAD's tentative flags)
    const view = (ns: string) => ipJson<{ ifname: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(['addr', 'show'], ns).map((l) => `${l.ifname} ${l.addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`)}`);
    const before = { host: view(host.name), ctr: view(ctr.name) };
    expect(before.ctr.some((l) => l.startsWith('eth0 10.252.3.'))).toBe(true);
    for (const attempt of ['first', 'retried']) {
      const del = await run({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: id, CNI_NETNS: '/proc/self/ns/net' }, conf);
      expect(del.status, attempt).toBe(1);
      expect(JSON.parse(del.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(OWN_NETNS) });
      expect(del.leftBehind).toEqual([]);
      const left = leftovers();
      expect({ reservations: left.reservations, rules: left.rules }, attempt).toEqual({ reservations: [], rules: [] });
      expect({ host: view(host.name), ctr: view(ctr.name) }, `${attempt}: no namespace touched`).toEqual(before);
    }
  });

  it('takes an exec-ed IPAM that hangs down with it (parent-death signal)', async () => {
    const { conf, run } = setup();
    const ctr = s.netns('c');
    const dir = s.tmpdir();
    const started = join(dir, 'started');
    writeFileSync(join(dir, 'hang-ipam'), `#!/bin/sh\ntouch "${started}"\nexec sleep 60\n`, { mode: 0o755 });
    const ipamStarted = (async () => {
      while (!existsSync(started)) await sleep(10);
    })();
    const add = await run({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: s.name('id'), CNI_NETNS: ctr.path, CNI_PATH: dir }, { ...conf, ipam: { type: 'hang-ipam' } }, ipamStarted);
    expect(add.signal).toBe('SIGKILL');
    expect(add.leftBehind, 'the IPAM (sleep 60) died with the plugin').toEqual([]);
  });
});

/*
 * ─── Issue 13, "Input": each class of hostile input through the built binary ───
 * Plugins run inside a "host" namespace of ours (nsenter), so rules, links and addresses they made
 * would show there; files go to a tmpdir of ours. Kept apart from the table above to ease merging.
 */
describe('hostile input (issue 13): decoding, names, keys, paths, file system, stdin, conntrack, bandwidth, CLI', () => {
  const s = new Scope();
  let host: { name: string; path: string };
  let ctr: { name: string; path: string };
  let dir: string;
  afterAll(() => s.dispose());

  beforeAll(() => {
    host = s.netns('h');
    ctr = s.netns('c');
    dir = s.tmpdir();
  });

  interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    json: any;
  }

  /** One plugin call inside our host namespace, as a runtime makes it. */
  function call(plugin: string, stdin: string | Buffer | Record<string, unknown>, env: Env = {}): Run {
    const base: Env = { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${s.prefix}-ctr`, CNI_NETNS: ctr.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN, ...env };
    const clean = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const input = typeof stdin === 'string' || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin);
    // setsid execs in place: the plugin leads its own process group, which must be empty once it exits
    const r = spawnSync('setsid', ['nsenter', `--net=${host.path}`, join(OUR_BIN, plugin)], { env: clean, input, encoding: 'utf8', maxBuffer: mb(1) });
    expect(groupMembers(r.pid), 'no process of the plugin outlives it').toEqual([]);
    let json: any;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
  }

  /** What a plugin could leave: links, addresses, routes and rules of both namespaces, files in our dir. */
  const snapshot = () => ({
    hostLinks: ipJson(['addr', 'show'], host.name),
    hostRoutes: ipJson(['route', 'show', 'table', 'all'], host.name),
    ctrLinks: ipJson(['addr', 'show'], ctr.name),
    nft: sh(['ip', 'netns', 'exec', host.name, 'nft', 'list', 'ruleset']),
    nat: sh(['ip', 'netns', 'exec', host.name, 'iptables-save', '-t', 'nat']).replace(/^#.*\n/gm, ''),
    files: sh(['find', dir, '-printf', '%p %s %y\n']),
  });

  /** Asserts a refusal: exit 1, one JSON error with `code` and a message matching `msg`, nothing changed. */
  function refused(plugin: string, stdin: string | Buffer | Record<string, unknown>, code: number, msg: RegExp, env: Env = {}): Run {
    const before = snapshot();
    const r = call(plugin, stdin, env);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout.trim().split('\n'), 'one JSON error on stdout').toHaveLength(1);
    expect(r.json.code, r.stdout).toBe(code);
    expect(r.json.msg).toMatch(msg);
    expect(r.json.msg.length, 'message is short enough to read').toBeLessThan(300);
    expect(snapshot()).toEqual(before);
    return r;
  }

  const bridgeConf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'hostile-net',
    type: 'bridge',
    bridge: `${s.prefix}br`,
    ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.213.7.0/24' }]] },
    ...extra,
  });

  describe('invalid UTF-8 anywhere in stdin is code 6 (never decoded to U+FFFD)', () => {
    const utf8Cases: [string, () => Buffer][] = [
      ['in the bridge name', () => Buffer.concat([Buffer.from(JSON.stringify(bridgeConf({ bridge: 'PLACEHOLDER' })).split('PLACEHOLDER')[0]!), Buffer.from([0x62, 0xff, 0x72]), Buffer.from(JSON.stringify(bridgeConf({ bridge: 'PLACEHOLDER' })).split('PLACEHOLDER')[1]!)])],
      ['a lone continuation byte in an unknown key', () => Buffer.concat([Buffer.from('{"cniVersion":"1.0.0","name":"n","type":"bridge","x'), Buffer.from([0x80]), Buffer.from('":1}')])],
      ['an overlong encoding of "/"', () => Buffer.concat([Buffer.from('{"cniVersion":"1.0.0","name":"n'), Buffer.from([0xc0, 0xaf]), Buffer.from('","type":"bridge"}')])],
      ['a UTF-16 surrogate encoded in UTF-8', () => Buffer.concat([Buffer.from('{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"b'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
    ];
    for (const [name, bytes] of utf8Cases) {
      it(name, () => {
        const r = refused('bridge', bytes(), 6, /^cannot decode network config: not valid UTF-8$/);
        expect(r.json.cniVersion).toBe('1.0.0');
      });
    }
  });

  describe('the network name has the spec pattern in every plugin (the spec and the reference skel agree)', () => {
    const bad = ['a\u0000b', '../x', '-n', 'a b', 'n\nlink del lo', 'ü', '.'];
    for (const plugin of ['loopback', 'bridge', 'tuning', 'portmap', 'bandwidth', 'firewall', 'host-local', 'vxlan']) {
      it(`${plugin} refuses ${bad.length} bad names with code 7`, () => {
        for (const name of bad) refused(plugin, { cniVersion: '1.0.0', name, type: plugin }, 7, /^invalid network config at name: must start with a letter or digit/);
      });
    }
  });

  describe('a config key named like an Object prototype member is code 7, not a TypeError', () => {
    const rows: [string, string, () => string][] = [
      ['bridge', 'constructor', () => JSON.stringify(bridgeConf({ constructor: { a: 1 } }))],
      ['bridge', 'toString', () => JSON.stringify(bridgeConf({ toString: 1 }))],
      ['bridge', '__proto__', () => JSON.stringify(bridgeConf()).replace(/^\{/, '{"__proto__":{"bridge":"x"},')],
      ['bridge', 'ipam.hasOwnProperty', () => JSON.stringify(bridgeConf({ ipam: { type: 'host-local', hasOwnProperty: 1, ranges: [[{ subnet: '10.213.7.0/24' }]] } }))],
      ['tuning', 'sysctl.constructor', () => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tuning', sysctl: { constructor: '1' }, prevResult: { cniVersion: '1.0.0' } })],
      ['portmap', 'runtimeConfig.portMappings.0.valueOf', () => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'portmap', runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, valueOf: 1 }] } })],
    ];
    for (const [plugin, key, stdin] of rows) {
      it(`${plugin}: ${key}`, () => {
        refused(plugin, stdin(), 7, new RegExp(`^invalid network config at ${key.replace(/[.$]/g, '\\$&')}: key "${key.split('.').pop()}" is reserved$`));
      });
    }
  });

  describe('config path keys that are relative or have a ".." segment are code 7, naming the key', () => {
    const rows: [string, string, Record<string, unknown>, RegExp][] = [
      ['host-local dataDir relative', 'host-local', { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', dataDir: 'var/lib/cni', ranges: [[{ subnet: '10.213.7.0/24' }]] } }, /at ipam\.dataDir: must be an absolute path$/],
      ['host-local dataDir with ..', 'host-local', { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', dataDir: '/tmp/../etc', ranges: [[{ subnet: '10.213.7.0/24' }]] } }, /at ipam\.dataDir: must not contain a "\.\." segment$/],
      ['host-local resolvConf relative', 'host-local', { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', resolvConf: 'resolv.conf', ranges: [[{ subnet: '10.213.7.0/24' }]] } }, /at ipam\.resolvConf: must be an absolute path$/],
      ['tuning dataDir with ..', 'tuning', { cniVersion: '1.0.0', name: 'n', type: 'tuning', dataDir: '/run/../etc', prevResult: { cniVersion: '1.0.0' } }, /at dataDir: must not contain a "\.\." segment$/],
      ['portmap dataDir relative', 'portmap', { cniVersion: '1.0.0', name: 'n', type: 'portmap', dataDir: 'run/portmap' }, /at dataDir: must be an absolute path$/],
      ['vxlan stateDir with ..', 'vxlan', { cniVersion: '1.0.0', name: 'n', type: 'vxlan', network: '10.244.0.0/16', subnet: '10.244.1.0/24', peers: [], stateDir: '/var/lib/../../etc' }, /at stateDir: must not contain \.\.$/],
      ['log.file relative', 'loopback', { cniVersion: '1.0.0', name: 'n', type: 'loopback', log: { file: 'tscni.log' } }, /at log\.file: must be an absolute path$/],
      ['log.file with ..', 'loopback', { cniVersion: '1.0.0', name: 'n', type: 'loopback', log: { file: '/var/log/../../etc/x' } }, /at log\.file: must not contain a "\.\." segment$/],
      ['log.level unknown', 'loopback', { cniVersion: '1.0.0', name: 'n', type: 'loopback', log: { level: 'loud' } }, /at log\.level: the level must be one of error, warn, info, debug$/],
    ];
    for (const [name, plugin, stdin, msg] of rows) it(name, () => void refused(plugin, stdin, 7, msg));

    it('TSCNI_LOG with an unknown level or a relative file is code 4', () => {
      refused('loopback', { cniVersion: '1.0.0', name: 'n', type: 'loopback' }, 4, /^invalid TSCNI_LOG "verbose": the level must be one of/, { TSCNI_LOG: 'verbose' });
      refused('loopback', { cniVersion: '1.0.0', name: 'n', type: 'loopback' }, 4, /^invalid TSCNI_LOG "debug:x\.log": the file must be an absolute path$/, { TSCNI_LOG: 'debug:x.log' });
    });
  });

  describe('file system errors the input causes have a specific code (5), never 999', () => {
    it('host-local with a dataDir that is a file', () => {
      const file = join(dir, 'host-local-file');
      writeFileSync(file, 'not a directory');
      refused('host-local', { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', dataDir: file, ranges: [[{ subnet: '10.213.7.0/24' }]] } }, 5, /^(ENOTDIR|EEXIST): .*host-local-file/);
      expect(readFileSync(file, 'utf8')).toBe('not a directory');
    });

    it('bridge whose IPAM dataDir is a file: no bridge, no veth, no address left', () => {
      const file = join(dir, 'bridge-ipam-file');
      writeFileSync(file, 'x');
      refused('bridge', bridgeConf({ ipam: { type: 'host-local', dataDir: file, ranges: [[{ subnet: '10.213.7.0/24' }]] } }), 5, /^(ENOTDIR|EEXIST): .*bridge-ipam-file/);
    });

    it('portmap with a dataDir that is a file: no rule left', () => {
      const file = join(dir, 'portmap-file');
      writeFileSync(file, 'x');
      const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: ctr.path }], ips: [{ address: '10.213.8.2/24', interface: 0 }] };
      refused('portmap', { cniVersion: '1.0.0', name: 'n', type: 'portmap', backend: 'nftables', dataDir: file, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] }, prevResult }, 5, /^(ENOTDIR|EEXIST): .*portmap-file/);
    });
  });

  describe('stdin: the size limit holds while reading, and a non-blocking pipe is read to its end', () => {
    /** Feeds `stdin` to the plugin through a pipe in `chunk`-byte writes `pauseMs` apart, optionally O_NONBLOCK; reports what was written. */
    const FEEDER = `
import fcntl, json, os, subprocess, sys, time
chunk, pause, nonblock = int(sys.argv[1]), float(sys.argv[2]) / 1000, sys.argv[3] == '1'
data = sys.stdin.buffer.read()
r, w = os.pipe()
if nonblock:
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(sys.argv[4:], stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(r)
written = 0
try:
    while written < len(data):
        written += os.write(w, data[written:written + chunk])
        time.sleep(pause)
except BrokenPipeError:
    pass
os.close(w)
out, err = p.communicate()
print(json.dumps({"status": p.returncode, "stdout": out.decode(), "stderr": err.decode(), "written": written}))
`;
    function feed(plugin: string, stdin: Buffer, chunk: number, pauseMs: number, nonblocking: boolean, env: Env) {
      const argv = ['python3', '-c', FEEDER, String(chunk), String(pauseMs), nonblocking ? '1' : '0', 'nsenter', `--net=${host.path}`, join(OUR_BIN, plugin)];
      const clean = Object.fromEntries(Object.entries({ PATH: process.env.PATH, CNI_PATH: OUR_BIN, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
      const r = spawnSync(argv[0]!, argv.slice(1), { input: stdin, env: clean, encoding: 'utf8', maxBuffer: mb(4) });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { status: number; stdout: string; stderr: string; written: number };
    }

    it('20 MiB fed slowly: code 5, and the plugin stops reading soon after 16 MiB (the writer is cut off)', () => {
      const big = Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'loopback', pad: 'x'.repeat(mb(20)) }));
      const before = snapshot();
      const r = feed('loopback', big, mb(1), 20, false, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'big', CNI_NETNS: ctr.path, CNI_IFNAME: 'lo' });
      expect(r.status, r.stderr).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 5, msg: 'network config larger than 16777216 bytes' });
      expect(r.written, 'bytes the plugin took before it stopped reading').toBeLessThan(mb(18));
      expect(snapshot()).toEqual(before);
    });

    it('a non-blocking pipe written in small pieces is read whole: the ADD succeeds with the full config', () => {
      const lo = s.netns('l');
      sh(['ip', '-n', lo.name, 'link', 'set', 'lo', 'down']);
      const conf = Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'lo-net', type: 'loopback', pad: 'y'.repeat(200_000), note: 'end' }));
      const r = feed('loopback', conf, 16_384, 5, true, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'nb', CNI_NETNS: lo.path, CNI_IFNAME: 'lo' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.0.0', interfaces: [{ name: 'lo' }] });
      expect(ipJson(['link', 'show', 'lo'], lo.name)[0].flags).toContain('UP');
    });
  });

  describe('portmap and conntrack: at most 4 in flight; none installed is a warning', () => {
    const PORTS = 120;
    const mappings = Array.from({ length: PORTS }, (_, i) => ({ hostPort: 30000 + i, containerPort: 9000, protocol: 'udp' }));
    const conf = (dataDir: string) => ({
      cniVersion: '1.0.0',
      name: 'ct-net',
      type: 'portmap',
      backend: 'nftables',
      dataDir,
      runtimeConfig: { portMappings: mappings },
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: ctr.path }], ips: [{ address: '10.213.9.2/24', interface: 0 }] },
    });
    beforeAll(() => {
      // the container's address must be routable from the host namespace (portmap asks `ip route get`)
      const veth = `${s.prefix}ct`;
      sh(['ip', '-n', host.name, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'ct0', 'netns', ctr.name]);
      sh(['ip', '-n', host.name, 'addr', 'add', '10.213.9.1/24', 'dev', veth]);
      sh(['ip', '-n', host.name, 'link', 'set', veth, 'up']);
    });

    /** A PATH whose first directory has only what the test puts there, then everything in /usr/sbin but conntrack, then /usr/bin and /bin. */
    function pathWith(stub: string | undefined): string {
      const bin = s.tmpdir();
      const sbin = s.tmpdir();
      for (const f of readdirSync('/usr/sbin')) if (f !== 'conntrack') symlinkSync(join('/usr/sbin', f), join(sbin, f));
      if (stub) writeFileSync(join(bin, 'conntrack'), stub, { mode: 0o755 });
      return `${bin}:${sbin}:/usr/bin:/bin`;
    }

    it(`${PORTS} UDP host ports: every port flushed, never more than 4 conntrack at once, DEL leaves nothing`, () => {
      const rec = s.tmpdir();
      const stub = `#!/bin/sh
mkdir "${rec}/run.$$"
ls -d "${rec}"/run.* | wc -l >> "${rec}/inflight"
sleep 0.02
echo "$*" >> "${rec}/calls"
rmdir "${rec}/run.$$"
exit 1
`;
      const before = snapshot();
      const marks = s.tmpdir();
      const env = { PATH: pathWith(stub), CNI_CONTAINERID: `${s.prefix}-ct` };
      const add = call('portmap', conf(marks), env);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      const calls = readFileSync(join(rec, 'calls'), 'utf8').trim().split('\n');
      expect(calls).toHaveLength(PORTS);
      expect(new Set(calls)).toEqual(new Set(mappings.map((m) => `-D -p udp --orig-port-dst ${m.hostPort}`)));
      const peak = Math.max(...readFileSync(join(rec, 'inflight'), 'utf8').trim().split('\n').map(Number));
      expect(peak).toBeGreaterThanOrEqual(1);
      expect(peak).toBeLessThanOrEqual(4);
      const del = call('portmap', conf(marks), { ...env, CNI_COMMAND: 'DEL' });
      expect(del.status, del.stdout + del.stderr).toBe(0);
      expect(snapshot()).toEqual(before);
      expect(readdirSync(marks)).toEqual([]);
    });

    it('no conntrack binary: the ADD succeeds (forwarding in place) with a warning on stderr', () => {
      const env = { PATH: pathWith(undefined), CNI_CONTAINERID: `${s.prefix}-nc` };
      const before = snapshot();
      const marks = s.tmpdir();
      const add = call('portmap', conf(marks), env);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json.ips).toEqual([{ address: '10.213.9.2/24', interface: 0 }]);
      const warning = add.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.level === 'warn');
      expect(warning?.msg).toMatch(/^cannot flush UDP conntrack entries/);
      expect(warning?.error).toMatch(/conntrack/);
      expect(sh(['ip', 'netns', 'exec', host.name, 'nft', 'list', 'table', 'inet', 'tscni_portmap'])).toContain('30119');
      expect(call('portmap', conf(marks), { ...env, CNI_COMMAND: 'DEL' }).status).toBe(0);
      expect(snapshot()).toEqual(before);
      expect(readdirSync(marks)).toEqual([]);
    });
  });

  describe('bandwidth shapes only the veth peer of the container interface', () => {
    it('refuses a host veth of another pair and a non-veth named in prevResult: code 7, no qdisc, no ifb', () => {
      const other = s.netns('o');
      const mine = `${s.prefix}hv`;
      const theirs = `${s.prefix}ov`;
      const uplink = `${s.prefix}up`;
      sh(['ip', '-n', host.name, 'link', 'add', mine, 'type', 'veth', 'peer', 'name', 'bw0', 'netns', ctr.name]);
      sh(['ip', '-n', host.name, 'link', 'add', theirs, 'type', 'veth', 'peer', 'name', 'bw0', 'netns', other.name]);
      sh(['ip', '-n', host.name, 'link', 'add', uplink, 'type', 'bridge']);
      s.defer(() => tryRun(['ip', '-n', host.name, 'link', 'del', mine]));
      const conf = (hostIf: string) => ({
        cniVersion: '1.0.0',
        name: 'bw-net',
        type: 'bandwidth',
        ingressRate: 1_000_000,
        ingressBurst: 100_000,
        egressRate: 1_000_000,
        egressBurst: 100_000,
        prevResult: { cniVersion: '1.0.0', interfaces: [{ name: hostIf }, { name: 'bw0', sandbox: ctr.path }], ips: [] },
      });
      const env = { CNI_IFNAME: 'bw0' };
      const qdiscs = () => sh(['tc', '-n', host.name, 'qdisc', 'show']);
      const before = qdiscs();
      refused('bandwidth', conf(theirs), 7, /no host interface in prevResult is the veth peer of bw0$/, env);
      const dummy = refused('bandwidth', conf(uplink), 7, /no host interface in prevResult is the veth peer of bw0$/, env);
      expect(dummy.json.details).toBe(`${uplink} is not a veth`);
      expect(qdiscs()).toBe(before);
      // the real peer is accepted, and DEL removes what ADD made
      const add = call('bandwidth', conf(mine), env);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(qdiscs()).toContain(`dev ${mine}`);
      expect(call('bandwidth', conf(mine), { ...env, CNI_COMMAND: 'DEL' }).status).toBe(0);
      expect(qdiscs()).toBe(before);
    });
  });

  describe('tscni CLI', () => {
    it('--log with an unknown level is a usage error (exit 2) with a clear message', () => {
      const r = spawnSync(join(OUR_BIN, 'tscni'), ['vxlan', 'sync', '--conf', join(dir, 'none.conf'), '--log', 'verbose'], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('unknown --log level "verbose": use one of error, warn, info, debug');
    });

    it('the fix `tscni ipam leaks` prints for an ifname like $(reboot) runs only tscni when pasted into a shell', () => {
      const dataDir = join(dir, 'leaks');
      const add = call('host-local', { cniVersion: '1.0.0', name: 'leak-net', type: 'host-local', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.213.10.0/24' }]] } }, { CNI_IFNAME: '$(reboot)', CNI_CONTAINERID: 'leaky' });
      expect(add.status, add.stdout).toBe(0);
      const leaks = spawnSync(join(OUR_BIN, 'tscni'), ['ipam', 'leaks', '--json', '--data-dir', dataDir, '--cache-dir', s.tmpdir()], { encoding: 'utf8' });
      const [leak] = JSON.parse(leaks.stdout);
      expect(leak).toMatchObject({ ifname: '$(reboot)', reason: 'no cached attachment' });
      // paste it: stubs record what ran
      const stubs = s.tmpdir();
      const rec = join(stubs, 'ran');
      writeFileSync(join(stubs, 'tscni'), `#!/bin/sh\nprintf 'tscni %s|%s|%s\\n' "$CNI_CONTAINERID" "$CNI_IFNAME" "$*" >> ${rec}\n`, { mode: 0o755 });
      writeFileSync(join(stubs, 'reboot'), `#!/bin/sh\necho reboot >> ${rec}\n`, { mode: 0o755 });
      const pasted = spawnSync('bash', ['-c', leak.fix], { env: { PATH: `${stubs}:/usr/bin:/bin` }, encoding: 'utf8' });
      expect(pasted.status, pasted.stderr).toBe(0);
      expect(readFileSync(rec, 'utf8')).toBe('tscni leaky|$(reboot)|del leak-net\n');
    });
  });
});
