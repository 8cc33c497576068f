import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileIdentity } from '../../lib/cni/delegate.ts';
import { definePlugin } from '../../lib/cni/plugin.ts';
import { runPlugin } from '../../lib/cni/skel.ts';
import { processExec, type Exec } from '../../lib/exec.ts';
import { loadPlugin } from '../../plugins/registry.ts';
import { execPlugin } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';

const PLUGIN = join(OUR_BIN, 'host-local');

describe('host-local verbs: GC, STATUS, CHECK, in-process delegation', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  const setup = (subnet = '10.9.0.0/24') => {
    const dataDir = s.tmpdir();
    const conf = { cniVersion: '1.1.0', name: 'verbs', type: 'host-local', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]] } };
    const env = (command: string, id = '', ifname = 'eth0') => ({ CNI_COMMAND: command, CNI_CONTAINERID: id || undefined, CNI_NETNS: id ? '/run/netns/none' : undefined, CNI_IFNAME: id ? ifname : undefined, CNI_PATH: OUR_BIN });
    const run = (command: string, id = '', extra: Record<string, unknown> = {}, ifname = 'eth0') => execPlugin(PLUGIN, env(command, id, ifname), { ...conf, ...extra });
    const files = () => readdirSync(join(dataDir, 'verbs')).filter((f) => /^\d/.test(f)).sort();
    return { dataDir, conf, run, files };
  };

  for (const key of ['cni.dev/valid-attachments', 'cni.dev/attachments']) {
    it(`GC frees what ${key} does not list`, () => {
      const { run, files } = setup();
      const [a, b] = [s.name('a'), s.name('b')];
      expect(run('ADD', a).status).toBe(0);
      expect(run('ADD', b).status).toBe(0);
      expect(run('ADD', b, {}, 'eth1').status).toBe(0);
      const gc = run('GC', '', { [key]: [{ containerID: b, ifname: 'eth1' }] });
      expect(gc.status, gc.stdout).toBe(0);
      expect(files()).toEqual(['10.9.0.4']);
      expect(run('CHECK', b, {}, 'eth1').status).toBe(0);
      expect(run('CHECK', a).status).toBe(1);
    });
  }

  it('GC without a list of valid attachments is refused, and frees nothing', () => {
    const { run, files } = setup();
    expect(run('ADD', s.name('a')).status).toBe(0);
    const gc = run('GC');
    expect(gc.status).toBe(1);
    expect(gc.json.code).toBe(7);
    expect(files()).toEqual(['10.9.0.2']);
  });

  it('STATUS succeeds with free addresses and says 50 when a set is full', () => {
    const { run } = setup('10.9.0.0/30');
    expect(run('STATUS').status).toBe(0);
    expect(run('ADD', s.name('a')).status).toBe(0);
    const full = run('STATUS');
    expect(full.status).toBe(1);
    expect(full.json).toMatchObject({ code: 50, msg: 'no free address in range set 0 (10.9.0.0/30)' });
    const add = run('ADD', s.name('b'));
    expect(add.json.msg).toBe('no free address in range set 0 (10.9.0.0/30)');
  });

  it('STATUS says 50 when the dataDir cannot be written', () => {
    const blocker = join(s.tmpdir(), 'file');
    writeFileSync(blocker, '');
    const conf = { cniVersion: '1.1.0', name: 'verbs', type: 'host-local', ipam: { type: 'host-local', dataDir: join(blocker, 'sub'), ranges: [[{ subnet: '10.9.0.0/24' }]] } };
    const r = execPlugin(PLUGIN, { CNI_COMMAND: 'STATUS', CNI_PATH: OUR_BIN }, conf);
    expect(r.status).toBe(1);
    expect(r.json.code).toBe(50);
    expect(r.json.msg).toContain('is not writable');
  });

  it('CHECK compares the reservation with prevResult', () => {
    const { run } = setup();
    const id = s.name('a');
    const add = run('ADD', id);
    expect(run('CHECK', id, { prevResult: add.json }).status).toBe(0);
    const wrong = { ...add.json, ips: [{ address: '10.9.0.77/24', gateway: '10.9.0.1' }] };
    const check = run('CHECK', id, { prevResult: wrong });
    expect(check.status).toBe(1);
    expect(check.json.msg).toContain('10.9.0.77');
    // an address from another IPAM in prevResult is not ours to judge
    expect(run('CHECK', id, { prevResult: { ...add.json, ips: [...add.json.ips, { address: '192.168.5.5/24' }] } }).status).toBe(0);
  });

  it('refuses names that would escape the store, before touching disk', () => {
    const { dataDir, run } = setup();
    expect(run('ADD', '../../etc').json.code).toBe(4);
    expect(run('ADD', s.name('a'), {}, '..').json.code).toBe(4);
    const badName = run('ADD', s.name('a'), { name: '../escape' });
    expect(badName.json.code).toBe(7);
    expect(existsSync(join(dataDir, '..', 'escape'))).toBe(false);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('gives the same result in-process (ctx.delegate from a plugin of ours) as by exec, without spawning', async () => {
    const exec = setup();
    const inproc = setup();
    const id = s.name('c');
    const byExec = exec.run('ADD', id);
    expect(byExec.status).toBe(0);

    const spawned: string[] = [];
    const counting: Exec = {
      runAsync: (argv, o) => (spawned.push(argv.join(' ')), processExec.runAsync(argv, o)),
    };
    const caller = definePlugin({
      name: 'caller',
      summary: 'delegates to host-local like bridge does',
      validate: () => {},
      add: async (ctx) => (await ctx.delegate('host-local', 'ADD'))!,
      del: async (ctx) => void (await ctx.delegate('host-local', 'DEL')),
      check: async () => {},
    });
    let stdout = '';
    const io = (command: string) => ({
      env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN },
      readStdin: () => JSON.stringify(inproc.conf),
      writeStdout: (t: string) => (stdout = t),
      writeStderr: () => {},
      exec: counting,
      resolve: loadPlugin,
      self: fileIdentity(join(OUR_BIN, 'tscni')),
    });
    expect(await runPlugin(caller, io('ADD'))).toBe(0);
    expect(JSON.parse(stdout)).toEqual(byExec.json);
    expect(inproc.files()).toEqual(exec.files());
    expect(await runPlugin(caller, io('DEL'))).toBe(0);
    expect(inproc.files()).toEqual([]);
    expect(spawned).toEqual([]);
  });
});
