import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../cli/index.ts';
import { containerIdForNetns } from '../../cli/runtime-conf.ts';

/**
 * A recording plugin: appends "COMMAND CNI_CONTAINERID CNI_IFNAME CNI_NETNS <stdin>" to a log and
 * answers ADD with a result naming itself, so the chain's order and stdin can be asserted.
 */
const FAKE = `#!/bin/sh
in=$(cat)
printf '%s|%s|%s|%s|%s|%s\\n' "$(basename "$0")" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_NETNS" "$in" >> "$FAKE_LOG"
if [ -n "$FAKE_FAIL" ] && [ "$(basename "$0")" = "$FAKE_FAIL" ] && [ "$CNI_COMMAND" = ADD ]; then
  echo '{"code":7,"msg":"boom","details":"on purpose"}'; exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.1.0","interfaces":[{"name":"'"$(basename "$0")"'","extra":1}],"ips":[{"interface":0,"address":"10.0.0.2/24"}]}'
fi
`;

describe('tscni runs a chain as libcni does (recording plugins)', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-chain-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  function setup(conflist: Record<string, unknown>) {
    const bin = tmp();
    for (const name of ['first', 'second']) {
      writeFileSync(join(bin, name), FAKE);
      chmodSync(join(bin, name), 0o755);
    }
    const conf = tmp();
    writeFileSync(join(conf, 'n.conflist'), JSON.stringify(conflist));
    const log = join(tmp(), 'log');
    const cache = tmp();
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NETCONFPATH: conf, CNI_PATH: bin, CNI_CACHEDIR: cache, FAKE_LOG: log };
    const run = async (args: string[], extra: Record<string, string> = {}) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, { writeStdout: (t) => (stdout += t), writeStderr: (t) => (stderr += t), env: { ...env, ...extra } });
      return { code, stdout, stderr };
    };
    const calls = () => {
      let text = '';
      try {
        text = readFileSync(log, 'utf8');
      } catch {
        return [];
      }
      return text.trim().split('\n').map((l) => {
        const [plugin, command, cid, ifname, netns, ...rest] = l.split('|');
        return { plugin, command, cid, ifname, netns, conf: JSON.parse(rest.join('|')) };
      });
    };
    return { run, calls, cache };
  }

  const LIST = {
    cniVersion: '1.0.0',
    cniVersions: ['1.0.0', '1.1.0'],
    name: 'n',
    plugins: [{ type: 'first', capabilities: { portMappings: true } }, { type: 'second' }],
  };

  it('ADD in order with prevResult, caches, CHECK and DEL (reverse) with the cached result, GC, STATUS', async () => {
    const { run, calls, cache } = setup(LIST);
    const add = await run(['add', 'n', '/run/netns/x', '--json', '--cap-args', '{"portMappings":[{"hostPort":1}],"other":1}'], { CNI_ARGS: 'A=1' });
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual({ cniVersion: '1.1.0', interfaces: [{ name: 'second' }], ips: [{ interface: 0, address: '10.0.0.2/24' }], dns: {} });
    const [a1, a2] = calls();
    expect([a1!.plugin, a2!.plugin]).toEqual(['first', 'second']);
    expect(a1).toMatchObject({ command: 'ADD', cid: containerIdForNetns('/run/netns/x'), ifname: 'eth0', netns: '/run/netns/x' });
    expect(a1!.conf).toEqual({ type: 'first', name: 'n', cniVersion: '1.1.0', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 1 }] } });
    expect(a2!.conf.prevResult).toEqual({ cniVersion: '1.1.0', interfaces: [{ name: 'first' }], ips: [{ interface: 0, address: '10.0.0.2/24' }], dns: {} });
    const files = readdirSync(join(cache, 'results'));
    expect(files).toEqual([`n-${containerIdForNetns('/run/netns/x')}-eth0`]);

    expect((await run(['check', 'n', '/run/netns/x'])).code).toBe(0);
    const checks = calls().slice(2);
    expect(checks.map((c) => [c.plugin, c.command])).toEqual([['first', 'CHECK'], ['second', 'CHECK']]);
    expect(checks[0]!.conf.prevResult.interfaces).toEqual([{ name: 'second' }]);
    expect(checks[0]!.conf.runtimeConfig).toEqual({ portMappings: [{ hostPort: 1 }] }); // none given: the ones cached at ADD
    expect(checks[0]!.cid).toBe(a1!.cid);
  });

  it('DEL runs in reverse with prevResult and removes the cache; a failed ADD is rolled back by DEL', async () => {
    const { run, calls, cache } = setup(LIST);
    expect((await run(['add', 'n', '/run/netns/y'])).code).toBe(0);
    expect((await run(['del', 'n', '/run/netns/y'])).code).toBe(0);
    const dels = calls().slice(2);
    expect(dels.map((c) => [c.plugin, c.command])).toEqual([['second', 'DEL'], ['first', 'DEL']]);
    expect(dels[0]!.conf.prevResult.interfaces).toEqual([{ name: 'second' }]);
    expect(readdirSync(join(cache, 'results'))).toEqual([]);

    const failed = await run(['add', 'n', '/run/netns/z', '--json'], { FAKE_FAIL: 'second' });
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toEqual({ code: 7, msg: 'plugin type="second" failed (add): boom', details: 'on purpose' });
    expect(calls().slice(4).map((c) => [c.plugin, c.command])).toEqual([['first', 'ADD'], ['second', 'ADD'], ['second', 'DEL'], ['first', 'DEL']]);
    expect(readdirSync(join(cache, 'results'))).toEqual([]);
  });

  it('GC DELs stale cached attachments, then sends the valid ones to every plugin; STATUS calls every plugin', async () => {
    const { run, calls, cache } = setup(LIST);
    for (const id of ['keep', 'stale']) expect((await run(['add', 'n', '/run/netns/none-' + id], { CNI_CONTAINERID: id })).code).toBe(0);
    const before = calls().length;
    const gc = await run(['gc', 'n', '--valid', 'keep/eth0', '--json']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout)).toMatchObject({ deleted: [{ containerID: 'stale', ifname: 'eth0' }], pluginsCalled: true, errors: [] });
    const after = calls().slice(before);
    expect(after.map((c) => [c.plugin, c.command, c.cid])).toEqual([['second', 'DEL', 'stale'], ['first', 'DEL', 'stale'], ['first', 'GC', ''], ['second', 'GC', '']]);
    expect(after[2]!.conf['cni.dev/valid-attachments']).toEqual([{ containerID: 'keep', ifname: 'eth0' }]);
    expect(readdirSync(join(cache, 'results'))).toEqual(['n-keep-eth0']);

    // without --valid: attachments whose netns is gone are stale
    mkdirSync(join(cache, 'x'));
    const gc2 = await run(['gc', 'n', '--json']);
    expect(JSON.parse(gc2.stdout).deleted).toEqual([{ containerID: 'keep', ifname: 'eth0' }]);

    const status = await run(['status', 'n', '--json']);
    expect(status.code).toBe(0);
    expect(calls().slice(-2).map((c) => [c.plugin, c.command])).toEqual([['first', 'STATUS'], ['second', 'STATUS']]);
  });

  it('skips CHECK when disableCheck, and GC/STATUS of plugins before 1.1.0', async () => {
    const { run, calls } = setup({ ...LIST, cniVersions: undefined, disableCheck: true });
    expect((await run(['add', 'n', '/run/netns/w'])).code).toBe(0);
    expect((await run(['check', 'n', '/run/netns/w'])).code).toBe(0);
    expect((await run(['status', 'n'])).stdout).toContain('no STATUS before cniVersion 1.1.0');
    expect((await run(['gc', 'n', '--valid', 'cnitool-x/eth0'])).code).toBe(0);
    expect(calls().map((c) => c.command)).toEqual(['ADD', 'ADD', 'DEL', 'DEL']);
  });
});
