import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';
import { ENV_ADD, fakePlugin, run } from '../support/fake-io.ts';

const conf = (cniVersion: string | undefined, extra: Record<string, unknown> = {}) => ({ ...(cniVersion ? { cniVersion } : {}), name: 'net', type: 'fake', ...extra });
const ENV = {
  DEL: { ...ENV_ADD, CNI_COMMAND: 'DEL' },
  CHECK: { ...ENV_ADD, CNI_COMMAND: 'CHECK' },
  GC: { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
  STATUS: { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' },
};
/** What a verb's config needs beyond the basics: GC its list of valid attachments. */
const verbConf = (verb: string, cniVersion: string) => conf(cniVersion, verb === 'GC' ? { 'cni.dev/valid-attachments': [] } : {});

describe('runPlugin: VERSION', () => {
  it('prints every supported version and echoes the config version, without any other env', async () => {
    const r = await run(fakePlugin(), { CNI_COMMAND: 'VERSION' }, { cniVersion: '0.3.1' });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.3.1', supportedVersions: SUPPORTED_VERSIONS });
  });

  it('answers with the latest version when stdin is empty or not JSON', async () => {
    for (const stdin of ['', 'not json', '[]']) {
      const r = await run(fakePlugin(), { CNI_COMMAND: 'VERSION' }, stdin);
      expect(r.code).toBe(0);
      expect(r.json.cniVersion).toBe('1.1.0');
    }
  });

  it('does not call the plugin', async () => {
    const p = fakePlugin();
    await run(p, { CNI_COMMAND: 'VERSION' }, conf('1.0.0'));
    expect(p.calls).toEqual([]);
  });
});

describe('runPlugin: ADD at every spec version', () => {
  const expected: Record<string, unknown> = {
    '0.1.0': { cniVersion: '0.1.0', ip4: { ip: '127.0.0.1/8' }, ip6: { ip: '::1/128' }, dns: {} },
    '0.2.0': { cniVersion: '0.2.0', ip4: { ip: '127.0.0.1/8' }, ip6: { ip: '::1/128' }, dns: {} },
  };
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    expected[v] = {
      cniVersion: v,
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/run/netns/x' }],
      ips: [
        { interface: 0, version: '4', address: '127.0.0.1/8' },
        { interface: 0, version: '6', address: '::1/128' },
      ],
      dns: {},
    };
  }
  for (const v of ['1.0.0', '1.1.0']) {
    expected[v] = {
      cniVersion: v,
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/run/netns/x' }],
      ips: [
        { interface: 0, address: '127.0.0.1/8' },
        { interface: 0, address: '::1/128' },
      ],
      dns: {},
    };
  }

  for (const version of SUPPORTED_VERSIONS) {
    it(`prints the result in the ${version} shape`, async () => {
      const p = fakePlugin();
      const r = await run(p, ENV_ADD, conf(version));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json).toEqual(expected[version]);
      expect(p.calls.map((c) => c.verb)).toEqual(['ADD']);
      expect(p.calls[0]!.ctx.cniVersion).toBe(version);
    });
  }

  it('reads a config without cniVersion as 0.1.0 (libcni does)', async () => {
    const r = await run(fakePlugin(), ENV_ADD, conf(undefined));
    expect(r.code).toBe(0);
    expect(r.json.cniVersion).toBe('0.1.0');
    expect(r.json.ip4).toEqual({ ip: '127.0.0.1/8' });
  });

  it('gives the plugin the env, the config with unknown keys, and args.cni', async () => {
    const p = fakePlugin();
    const c = conf('1.0.0', { bridge: 'br0', args: { cni: { ips: ['10.0.0.2'] } }, runtimeConfig: { portMappings: [] } });
    await run(p, { ...ENV_ADD, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' }, c);
    const ctx = p.calls[0]!.ctx;
    expect({ command: ctx.command, containerId: ctx.containerId, netns: ctx.netns, ifname: ctx.ifname }).toEqual({ command: 'ADD', containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0' });
    expect(ctx.conf).toEqual(c);
    expect(ctx.cniArgs([])).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'web' });
  });

  it('fails with 999 when a plugin returns no result from ADD', async () => {
    const p = fakePlugin();
    p.add = async () => undefined as never;
    const r = await run(p, ENV_ADD, conf('1.0.0'));
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 999, msg: 'fake returned no result' });
  });

  it('fails with code 1 when the result cannot be expressed at 0.2.0 (no IP at all)', async () => {
    const r = await run(fakePlugin({ result: { interfaces: [{ name: 'eth0' }] } }), ENV_ADD, conf('0.2.0'));
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: '0.2.0', code: 1 });
  });
});

describe('runPlugin: prevResult of any version reaches the plugin in the newest shape', () => {
  const cases: [string, unknown][] = [
    ['0.2.0', { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] }, dns: {} }],
    ['0.4.0', { cniVersion: '0.4.0', ips: [{ version: '4', interface: 0, address: '10.1.0.5/16', gateway: '10.1.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }],
    ['1.0.0', { cniVersion: '1.0.0', ips: [{ interface: 0, address: '10.1.0.5/16', gateway: '10.1.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }],
  ];
  for (const [version, prevResult] of cases) {
    it(`converts a ${version} prevResult`, async () => {
      const p = fakePlugin();
      const r = await run(p, ENV.DEL, conf(version, { prevResult }));
      expect(r.code, r.stdout).toBe(0);
      const prev = p.calls[0]!.ctx.prevResult!;
      expect(prev.ips?.[0]).toMatchObject({ address: '10.1.0.5/16', gateway: '10.1.0.1' });
      expect(prev.ips?.[0]).not.toHaveProperty('version');
      expect(prev.routes).toEqual([{ dst: '0.0.0.0/0' }]);
    });
  }

  it('a prevResult that is not a result is code 6', async () => {
    const r = await run(fakePlugin(), ENV.DEL, conf('1.0.0', { prevResult: { ips: 'nope' } }));
    expect(r.json).toMatchObject({ code: 6, msg: 'cannot decode result' });
    expect(r.json.details).toContain('ips');
  });
});

describe('runPlugin: DEL, CHECK, GC, STATUS', () => {
  for (const verb of ['DEL', 'CHECK', 'GC', 'STATUS'] as const) {
    it(`${verb} calls the plugin and prints nothing`, async () => {
      const p = fakePlugin();
      const r = await run(p, ENV[verb], verbConf(verb, '1.1.0'));
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toBe('');
      expect(p.calls.map((c) => c.verb)).toEqual([verb]);
    });
  }

  it('DEL needs no CNI_NETNS (the runtime may have lost it)', async () => {
    const p = fakePlugin();
    const r = await run(p, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, conf('1.0.0'));
    expect(r.code, r.stdout).toBe(0);
    expect(p.calls[0]!.ctx.netns).toBe('');
  });

  it('GC and STATUS need only CNI_PATH', async () => {
    for (const verb of ['GC', 'STATUS'] as const) {
      const r = await run(fakePlugin(), ENV[verb], verbConf(verb, '1.1.0'));
      expect(r.code).toBe(0);
      const missing = await run(fakePlugin(), { CNI_COMMAND: verb }, conf('1.1.0'));
      expect(missing.json).toMatchObject({ code: 4, msg: 'required env variables [CNI_PATH] missing' });
    }
  });

  it('GC and STATUS succeed for a plugin that does not implement them', async () => {
    for (const verb of ['GC', 'STATUS'] as const) {
      const r = await run(fakePlugin({ withGcStatus: false }), ENV[verb], verbConf(verb, '1.1.0'));
      expect(r.code).toBe(0);
    }
  });

  it('GC without a list of valid attachments is code 7 and never reaches the plugin (with or without a gc)', async () => {
    for (const list of [{}, { 'cni.dev/valid-attachments': null }, { 'cni.dev/valid-attachments': {} }, { 'cni.dev/attachments': [{ containerID: 'c1' }] }]) {
      for (const withGcStatus of [true, false]) {
        const p = fakePlugin({ withGcStatus });
        const r = await run(p, ENV.GC, conf('1.1.0', list));
        expect(r.json, JSON.stringify(list)).toMatchObject({ code: 7 });
        expect(r.json.msg).toMatch(/cni\.dev\/valid-attachments|cni\.dev\/attachments/);
        expect(p.calls).toEqual([]);
      }
    }
  });

  it('GC takes the list under either name, as libcni sends it', async () => {
    for (const key of ['cni.dev/valid-attachments', 'cni.dev/attachments']) {
      const p = fakePlugin();
      const r = await run(p, ENV.GC, conf('1.1.0', { [key]: [{ containerID: 'c1', ifname: 'eth0' }] }));
      expect(r.code, r.stdout).toBe(0);
      expect(p.calls[0]!.ctx.validAttachments()).toEqual([{ containerID: 'c1', ifname: 'eth0' }]);
    }
  });

  it('CHECK before 0.4.0 is code 1', async () => {
    for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1']) {
      const p = fakePlugin();
      const r = await run(p, ENV.CHECK, conf(v));
      expect(r.json).toMatchObject({ cniVersion: v, code: 1 });
      expect(p.calls).toEqual([]);
    }
  });

  it('GC and STATUS before 1.1.0 are code 1', async () => {
    for (const verb of ['GC', 'STATUS'] as const) {
      const r = await run(fakePlugin(), ENV[verb], conf('1.0.0'));
      expect(r.json).toMatchObject({ code: 1, msg: `config version 1.0.0 does not allow ${verb}` });
    }
  });
});

describe('runPlugin: error codes', () => {
  const failing = async (stdin: unknown, env: Record<string, string | undefined> = ENV_ADD, pluginOpts = {}) => {
    const p = fakePlugin(pluginOpts);
    const r = await run(p, env, stdin);
    expect(r.code).toBe(1);
    return { ...r, calls: p.calls };
  };

  it('1: unsupported cniVersion, with the supported ones in details', async () => {
    for (const v of ['0.5.0', '2.0.0', '1.0', 'latest', '']) {
      const r = await failing(conf(undefined, { cniVersion: v }));
      expect(r.json).toMatchObject({ code: 1, msg: 'incompatible CNI versions' });
      expect(r.json.details).toContain('1.1.0');
      expect(r.calls).toEqual([]);
    }
  });

  it('4: missing CNI_COMMAND, unknown CNI_COMMAND, missing variables by name', async () => {
    expect((await failing(conf('1.0.0'), {})).json).toMatchObject({ code: 4, msg: 'required env variables [CNI_COMMAND] missing' });
    expect((await failing(conf('1.0.0'), { CNI_COMMAND: 'add' })).json).toMatchObject({ code: 4, msg: 'unknown CNI_COMMAND: "add"' });
    expect((await failing(conf('1.0.0'), { CNI_COMMAND: 'ADD' })).json.msg).toBe('required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing');
  });

  it('5: stdin that cannot be read, or is larger than 16 MiB', async () => {
    const p = fakePlugin();
    const r = await run(p, ENV_ADD, '', {
      readStdin: () => {
        throw new Error('EIO');
      },
    });
    expect(r.json).toMatchObject({ code: 5, msg: 'error reading from stdin: EIO' });
    const big = JSON.stringify({ ...conf('1.0.0'), pad: 'x'.repeat(16 * 1024 * 1024) });
    expect((await failing(big)).json).toMatchObject({ code: 5, msg: 'network config larger than 16777216 bytes' });
  });

  it('4: an unknown TSCNI_LOG level is refused, and the error is still reported', async () => {
    const r = await failing(conf('1.0.0'), { ...ENV_ADD, TSCNI_LOG: 'verbose' });
    expect(r.json).toMatchObject({ code: 4, msg: 'invalid TSCNI_LOG "verbose": the level must be one of error, warn, info, debug' });
    expect(r.stderr).toContain('invalid TSCNI_LOG');
  });

  it('5: stdin is read with a limit one byte past 16 MiB, so more is never buffered', async () => {
    let asked: number | undefined;
    const r = await run(fakePlugin(), ENV_ADD, '', {
      readStdin: (limit) => {
        asked = limit;
        return new Uint8Array(limit).fill(0x20);
      },
    });
    expect(asked).toBe(16 * 1024 * 1024 + 1);
    expect(r.json).toMatchObject({ code: 5, msg: 'network config larger than 16777216 bytes' });
  });

  it('6: stdin bytes that are not UTF-8, anywhere (not replaced by U+FFFD)', async () => {
    const p = fakePlugin();
    const bytes = Buffer.concat([Buffer.from('{"cniVersion":"1.0.0","name":"n'), Buffer.from([0xc3, 0x28]), Buffer.from('","type":"fake"}')]);
    const r = await run(p, ENV_ADD, '', { readStdin: () => new Uint8Array(bytes) });
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 6, msg: 'cannot decode network config: not valid UTF-8' });
    expect(p.calls).toEqual([]);
    const ok = await run(p, ENV_ADD, '', { readStdin: () => new Uint8Array(Buffer.from(JSON.stringify(conf('1.0.0', { note: 'ü ✓' })))) });
    expect(ok.code).toBe(0);
    const bom = await run(p, ENV_ADD, '', { readStdin: () => new Uint8Array(Buffer.from('\ufeff' + JSON.stringify(conf('1.0.0')))) });
    expect(bom.json).toMatchObject({ code: 6 }); // a byte-order mark is kept, and refused as JSON (as Go's decoder does)
  });

  it('6: stdin that is not a JSON object', async () => {
    for (const stdin of ['', '{', 'null', '[1]', '"net"', '42']) {
      const r = await failing(stdin);
      expect(r.json.code, stdin).toBe(6);
      expect(r.json.msg).toMatch(/^cannot decode network config/);
    }
  });

  it('7: invalid config, naming the key', async () => {
    const noName = await failing({ cniVersion: '1.0.0', type: 'fake' });
    expect(noName.json).toMatchObject({ cniVersion: '1.0.0', code: 7, msg: 'invalid network config at name: expected string, got nothing' });
    const badName = await failing({ cniVersion: '1.0.0', name: 42 });
    expect(badName.json.msg).toBe('invalid network config at name: expected string, got number');
    const badArgs = await failing(conf('1.0.0', { args: 'x' }));
    expect(badArgs.json).toMatchObject({ code: 7 });
    expect(badArgs.json.msg).toContain('at args');
    const badType = await failing(conf('1.0.0', { type: ['fake'] }));
    expect(badType.json.msg).toContain('at type');
  });

  it('11 and 50 thrown by a plugin pass through with their details', async () => {
    for (const code of [ErrorCode.tryAgainLater, ErrorCode.pluginNotAvailable]) {
      const r = await failing(conf('1.1.0'), ENV_ADD, { fail: new CniError(code, 'not now', 'lock held') });
      expect(r.json).toEqual({ cniVersion: '1.1.0', code, msg: 'not now', details: 'lock held' });
    }
  });

  it('999 for anything else a plugin throws, with its message', async () => {
    const r = await failing(conf('1.0.0'), ENV_ADD, { fail: new TypeError('x is undefined') });
    expect(r.json).toEqual({ cniVersion: '1.0.0', code: 999, msg: 'x is undefined' });
    const s = await failing(conf('1.0.0'), ENV_ADD, { fail: 'a string' });
    expect(s.json).toEqual({ cniVersion: '1.0.0', code: 999, msg: 'a string' });
  });

  it('errors go to stdout as JSON and are logged on stderr', async () => {
    const r = await failing(conf('1.0.0'), ENV_ADD, { fail: new CniError(11, 'busy') });
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({ level: 'error', msg: 'busy', plugin: 'fake', command: 'ADD', containerId: 'c1', code: 11 });
  });

  it('a 999 log line carries the stack, the stdout error does not', async () => {
    const r = await failing(conf('1.0.0'), ENV_ADD, { fail: new Error('boom') });
    expect(JSON.parse(r.stderr.trim()).stack).toContain('Error: boom');
    expect(r.json).not.toHaveProperty('stack');
  });
});

describe('runPlugin: logging', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cni-skel-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is quiet on success by default', async () => {
    const r = await run(fakePlugin(), ENV_ADD, conf('1.0.0'));
    expect(r.stderr).toBe('');
  });

  it('TSCNI_LOG=debug logs start and done on stderr', async () => {
    const r = await run(fakePlugin(), { ...ENV_ADD, TSCNI_LOG: 'debug' }, conf('1.0.0'));
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.msg)).toEqual(['start', 'done']);
    expect(lines[0]).toMatchObject({ level: 'debug', plugin: 'fake', command: 'ADD', netns: '/run/netns/x', cniVersion: '1.0.0' });
  });

  it('TSCNI_LOG=LEVEL:PATH also appends to a file only root can read', async () => {
    const file = join(dir, 'env.log');
    await run(fakePlugin(), { ...ENV_ADD, TSCNI_LOG: `debug:${file}` }, conf('1.0.0'));
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('the config `log` key applies when TSCNI_LOG is unset', async () => {
    const file = join(dir, 'conf.log');
    await run(fakePlugin({ fail: new Error('boom') }), ENV_ADD, conf('1.0.0', { log: { level: 'info', file } }));
    expect(JSON.parse(readFileSync(file, 'utf8').trim())).toMatchObject({ level: 'error', msg: 'boom', code: 999 });
  });

  it('an unwritable log file never fails the operation', async () => {
    const r = await run(fakePlugin(), { ...ENV_ADD, TSCNI_LOG: 'debug:/proc/nonexistent/x.log' }, conf('1.0.0'));
    expect(r.code).toBe(0);
  });
});
