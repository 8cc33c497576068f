import { describe, expect, it } from 'vitest';
import { parseEnv, validIfName } from '../../lib/cni/env.ts';

const ADD = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };
const fails = (env: Record<string, string | undefined>, msg: string | RegExp) => {
  let err: any;
  try {
    parseEnv(env);
  } catch (e) {
    err = e;
  }
  expect(err?.code, JSON.stringify(env).slice(0, 200)).toBe(4);
  if (typeof msg === 'string') expect(err.message).toBe(msg);
  else expect(`${err.message} ${err.details ?? ''}`).toMatch(msg);
};

describe('parseEnv', () => {
  it('reads an ADD; CNI_PATH keeps only absolute directories', () => {
    expect(parseEnv({ ...ADD, CNI_PATH: '/opt/cni/bin:relative::/usr/lib/cni', CNI_ARGS: 'A=1' })).toEqual({
      command: 'ADD',
      containerId: 'c1',
      netns: '/run/netns/x',
      ifname: 'eth0',
      cniArgs: 'A=1',
      path: ['/opt/cni/bin', '/usr/lib/cni'],
    });
  });

  it('CNI_COMMAND missing or unknown (commands are upper case)', () => {
    fails({}, 'required env variables [CNI_COMMAND] missing');
    fails({ CNI_COMMAND: 'add' }, 'unknown CNI_COMMAND: "add"');
    fails({ CNI_COMMAND: 'ADD\nDEL' }, /unknown CNI_COMMAND/);
  });

  it('VERSION needs nothing else', () => {
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
  });

  it('ADD and CHECK need container ID, netns and ifname; the message names each missing one', () => {
    for (const command of ['ADD', 'CHECK']) {
      fails({ CNI_COMMAND: command }, 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing');
      fails({ ...ADD, CNI_COMMAND: command, CNI_NETNS: '' }, 'required env variables [CNI_NETNS] missing');
      fails({ ...ADD, CNI_COMMAND: command, CNI_CONTAINERID: undefined }, 'required env variables [CNI_CONTAINERID] missing');
    }
  });

  it('DEL may come without a netns (containerd sends CNI_NETNS="")', () => {
    expect(parseEnv({ ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('');
    expect(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }).netns).toBe('');
    fails({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0' }, 'required env variables [CNI_CONTAINERID] missing');
  });

  it('GC and STATUS need only CNI_PATH', () => {
    for (const command of ['GC', 'STATUS']) {
      expect(parseEnv({ CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin' }).path).toEqual(['/opt/cni/bin']);
      fails({ CNI_COMMAND: command }, 'required env variables [CNI_PATH] missing');
    }
  });

  it('container IDs follow the spec regex and a length bound', () => {
    for (const ok of ['a', 'A', '0', 'a_b.c-d', 'f'.repeat(64), 'cnitool-0123abcd', 'a..b']) expect(parseEnv({ ...ADD, CNI_CONTAINERID: ok }).containerId).toBe(ok);
    for (const bad of ['-a', '_a', '.a', '..', '../x', 'a/b', 'a b', 'a\nb', 'a;b', 'a:b', 'é', 'x'.repeat(256)]) {
      fails({ ...ADD, CNI_CONTAINERID: bad }, /^invalid env variables \[CNI_CONTAINERID\] CNI_CONTAINERID /);
    }
  });

  it('interface names: at most 15 chars, no "/", ":" or whitespace, not "." or ".."', () => {
    for (const ok of ['eth0', 'lo', 'a', 'x'.repeat(15), 'veth-a.b_c']) expect(parseEnv({ ...ADD, CNI_IFNAME: ok }).ifname).toBe(ok);
    for (const bad of ['x'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'a\nb', 'a\x01b']) {
      fails({ ...ADD, CNI_IFNAME: bad }, /^invalid env variables \[CNI_IFNAME\] CNI_IFNAME /);
      expect(validIfName(bad)).toBeTypeOf('string');
    }
    expect(validIfName('')).toBe('is empty');
  });

  it('netns must be an absolute path without control characters', () => {
    fails({ ...ADD, CNI_NETNS: 'run/netns/x' }, /CNI_NETNS must be an absolute path/);
    fails({ ...ADD, CNI_NETNS: '/run/netns/x\nip link del eth0' }, /CNI_NETNS contains a control character/);
    fails({ ...ADD, CNI_NETNS: '/' + 'x'.repeat(5000) }, /CNI_NETNS is longer than 4096/);
  });

  it('oversized CNI_ARGS and CNI_PATH are refused', () => {
    fails({ ...ADD, CNI_ARGS: 'A=' + 'x'.repeat(70_000) }, /CNI_ARGS is longer than 65536/);
    fails({ ...ADD, CNI_PATH: '/' + 'x'.repeat(20_000) }, /CNI_PATH is too long/);
  });

  it('reports every invalid variable at once', () => {
    fails({ ...ADD, CNI_CONTAINERID: '-x', CNI_IFNAME: 'a b' }, 'invalid env variables [CNI_CONTAINERID,CNI_IFNAME]');
  });
});
