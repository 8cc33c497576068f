import { chmodSync, linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePluginError, fileIdentity, findInPath } from '../../lib/cni/delegate.ts';
import { delegate, type Invocation } from '../../lib/cni/context.ts';
import { silentLogger } from '../../lib/cni/log.ts';
import { fakeExec, fakePlugin } from '../support/fake-io.ts';

const dir = mkdtempSync(join(tmpdir(), 'cni-delegate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const exe = (name: string) => {
  const file = join(dir, name);
  writeFileSync(file, '#!/bin/sh\nexit 0\n');
  chmodSync(file, 0o755);
  return file;
};
const ipamFile = exe('host-local');
writeFileSync(join(dir, 'not-executable'), '');

function invocation(exec: ReturnType<typeof fakeExec>, extra: Partial<Invocation> = {}): Invocation {
  return {
    env: { command: 'ADD', containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0', cniArgs: '', path: ['/nonexistent', dir] },
    rawEnv: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_PATH: dir, OTHER: 'kept' },
    conf: { cniVersion: '1.0.0', name: 'net', type: 'bridge', ipam: { type: 'host-local' } },
    cniVersion: '1.0.0',
    prevResult: undefined,
    exec,
    log: silentLogger,
    resolve: async () => undefined,
    self: undefined,
    ...extra,
  };
}

describe('findInPath', () => {
  it('finds an executable file in the first directory that has it', () => {
    expect(findInPath('host-local', ['/nonexistent', dir])).toBe(ipamFile);
  });
  it('a missing or non-executable plugin is code 7 naming the path searched', () => {
    expect(() => findInPath('dhcp', [dir])).toThrow(expect.objectContaining({ code: 7, message: `failed to find plugin "dhcp" in path [${dir}]` }));
    expect(() => findInPath('not-executable', [dir])).toThrow(expect.objectContaining({ code: 7 }));
  });
  it('refuses a type that could leave the directory', () => {
    for (const bad of ['../host-local', 'a/b', '.', '', '-x', 'x'.repeat(300)]) expect(() => findInPath(bad, [dir]), bad).toThrow(expect.objectContaining({ code: 7 }));
  });
});

describe('decodePluginError', () => {
  it("reads a plugin's {code, msg, details} as libcni does; a missing code is 999", () => {
    expect(decodePluginError('{"code":11,"msg":"range full","details":"d"}')).toMatchObject({ code: 11, message: 'range full', details: 'd' });
    expect(decodePluginError('{"code":7}')).toMatchObject({ code: 7, message: '' });
    expect(decodePluginError('{"msg":"no code"}')).toMatchObject({ code: 999, message: 'no code' });
  });
  it('is undefined when stdout holds no CNI error', () => {
    for (const out of ['', 'oops', '[]', 'null', '{"cniVersion":"1.0.0"}', '{"code":"7","msg":1}']) expect(decodePluginError(out), out).toBeUndefined();
  });
});

describe('delegate by exec', () => {
  it('passes the whole env with CNI_COMMAND, the conf on stdin, and reads the result in the newest shape', async () => {
    const exec = fakeExec(() => ({ stdout: JSON.stringify({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.1.0.5/16' }] }) }));
    const result = await delegate(invocation(exec), 'host-local', 'ADD');
    expect(result?.ips).toEqual([{ address: '10.1.0.5/16' }]);
    const { argv, options } = exec.spawns[0]!;
    expect(argv).toEqual([ipamFile]);
    expect(options).toMatchObject({ env: { CNI_COMMAND: 'ADD', OTHER: 'kept' }, inheritStderr: true, allowFailure: true });
    expect(JSON.parse(options!.input!)).toEqual({ cniVersion: '1.0.0', name: 'net', type: 'bridge', ipam: { type: 'host-local' } });
  });

  it('a delegate error keeps its code and message; a failed ADD is followed by its DEL', async () => {
    const exec = fakeExec((_argv, o) => (o?.env?.CNI_COMMAND === 'ADD' ? { status: 1, stdout: JSON.stringify({ code: 11, msg: 'range full', details: 'd' }) } : {}));
    await expect(delegate(invocation(exec), 'host-local', 'ADD')).rejects.toMatchObject({ code: 11, message: 'range full', details: 'd' });
    expect(exec.spawns.map((s) => s.options?.env?.CNI_COMMAND)).toEqual(['ADD', 'DEL']);
  });

  it('a delegate that crashes without a CNI error is 999 with its exit status', async () => {
    const exec = fakeExec((_argv, o) => (o?.env?.CNI_COMMAND === 'DEL' ? { status: null, signal: 'SIGKILL' } : {}));
    await expect(delegate(invocation(exec), 'host-local', 'DEL')).rejects.toMatchObject({ code: 999, message: `delegate ${ipamFile} failed (SIGKILL)` });
    expect(exec.spawns).toHaveLength(1);
  });

  it('DEL, CHECK, GC and STATUS return nothing', async () => {
    for (const command of ['DEL', 'CHECK', 'GC', 'STATUS'] as const) {
      expect(await delegate(invocation(fakeExec()), 'host-local', command)).toBeUndefined();
    }
  });
});

describe('delegate in-process', () => {
  it('calls our own plugin without a process when CNI_PATH resolves to this executable', async () => {
    const self = join(dir, 'tscni');
    writeFileSync(self, '');
    chmodSync(self, 0o755);
    linkSync(self, join(dir, 'static'));
    const ipam = fakePlugin({ result: { ips: [{ address: '10.9.0.2/24' }] } });
    const exec = fakeExec();
    const conf = { cniVersion: '1.0.0', name: 'ignored', type: 'static', addresses: [] };
    const result = await delegate(invocation(exec, { self: fileIdentity(self), resolve: async (t) => (t === 'static' ? ipam : undefined) }), 'static', 'ADD', conf);
    expect(result).toEqual({ ips: [{ address: '10.9.0.2/24' }] });
    expect(exec.spawns).toEqual([]);
    expect(ipam.calls[0]!.ctx.conf).toEqual({ ...conf, name: 'net' });
  });

  it('runs DEL in-process after a failed in-process ADD', async () => {
    const ipam = fakePlugin({ fail: new Error('no space') });
    const file = exe('ours');
    await expect(delegate(invocation(fakeExec(), { self: fileIdentity(file), resolve: async () => ipam }), 'ours', 'ADD')).rejects.toThrow('no space');
    expect(ipam.calls.map((c) => c.verb)).toEqual(['ADD', 'DEL']);
  });
});
