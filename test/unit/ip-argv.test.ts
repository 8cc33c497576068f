import { describe, expect, it } from 'vitest';
import { ProcessError } from '../../lib/exec.ts';
import { batchLine, IpBatchError, ipArgv, linkGone, namespaceGone } from '../../lib/ip/ip.ts';

describe('ipArgv', () => {
  it('runs ip in the host namespace without a netns', () => {
    expect(ipArgv()).toEqual(['ip']);
    expect(ipArgv('')).toEqual(['ip']);
  });

  it('enters a named namespace with ip -n (one exec)', () => {
    expect(ipArgv('/run/netns/cni-1234')).toEqual(['ip', '-n', 'cni-1234']);
    expect(ipArgv('/var/run/netns/netns-ab_c.d')).toEqual(['ip', '-n', 'netns-ab_c.d']);
  });

  it('enters any other path with nsenter', () => {
    expect(ipArgv('/proc/123/ns/net')).toEqual(['nsenter', '--net=/proc/123/ns/net', 'ip']);
    expect(ipArgv('/run/netns/sub/dir')).toEqual(['nsenter', '--net=/run/netns/sub/dir', 'ip']);
    expect(ipArgv('/run/netns/-n')).toEqual(['nsenter', '--net=/run/netns/-n', 'ip']);
    expect(ipArgv('/run/netns/..')).toEqual(['nsenter', '--net=/run/netns/..', 'ip']);
  });
});

describe('batchLine', () => {
  it('joins safe tokens', () => {
    expect(batchLine('link', 'set', 'eth0', 'mtu', 1500)).toBe('link set eth0 mtu 1500');
  });

  it('refuses tokens that could add a line or an argument', () => {
    for (const bad of ['eth0\nlink del lo', 'a b', '', 'x;y', "it's", 'tab\there']) {
      expect(() => batchLine('link', 'set', bad)).toThrow(/unsafe token/);
    }
  });
});

describe('namespaceGone', () => {
  const failed = (argv: string[], stderr: string) => new ProcessError({ argv, status: 1, signal: null, stdout: '', stderr });
  it('recognises both ways of entering a namespace failing', () => {
    expect(namespaceGone(failed(['nsenter'], 'nsenter: cannot open /proc/9/ns/net: No such file or directory\n'))).toBe(true);
    expect(namespaceGone(failed(['ip', '-n', 'x'], 'Cannot open network namespace "x": No such file or directory\n'))).toBe(true);
    expect(namespaceGone(failed(['ip'], 'Cannot find device "eth0"\n'))).toBe(false);
    expect(namespaceGone(new Error('other'))).toBe(false);
  });
});

describe('linkGone', () => {
  it('recognises a missing link in stderr text, batch errors and process errors', () => {
    const out = (stderr: string) => ({ argv: ['ip'], status: 1, signal: null, stdout: '', stderr });
    expect(linkGone('Device "eth0" does not exist.\n')).toBe(true);
    expect(linkGone(new IpBatchError(['link del veth1'], out('Cannot find device "veth1"\nCommand failed -:1\n')))).toBe(true);
    expect(linkGone(new ProcessError(out('Cannot find device "x"\n')))).toBe(true);
    expect(linkGone(new IpBatchError(['link add x type bridge'], out('RTNETLINK answers: File exists\nCommand failed -:1\n')))).toBe(false);
    expect(linkGone(undefined)).toBe(false);
  });
});
