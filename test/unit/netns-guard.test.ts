import { describe, expect, it } from 'vitest';
import { CniError } from '../../lib/cni/errors.ts';
import { ipArgv } from '../../lib/ip/ip.ts';
import { isOwnNetns, nsenterNet, refuseOwnNetns } from '../../lib/ip/netns-guard.ts';

describe('the own network namespace is never a container’s', () => {
  it('recognises every path to the namespace we run in by device and inode', () => {
    for (const p of ['/proc/self/ns/net', '/proc/thread-self/ns/net', `/proc/${process.pid}/ns/net`]) expect(isOwnNetns(p), p).toBe(true);
  });

  it('does not take another file, another namespace kind or a missing path for it', () => {
    for (const p of ['/', '/proc/self/ns/uts', '/run/netns/tscni-no-such-netns', '']) expect(isOwnNetns(p), p).toBe(false);
  });

  it('refuses it with code 4 wherever a namespace is entered', () => {
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err instanceof CniError ? `${err.code}: ${err.message}` : String(err);
      }
      return 'accepted';
    };
    expect(refused(() => refuseOwnNetns('/proc/self/ns/net'))).toBe("4: CNI_NETNS /proc/self/ns/net is the plugin's own network namespace, not a container's");
    expect(refused(() => nsenterNet('/proc/thread-self/ns/net'))).toMatch(/^4: /);
    expect(refused(() => ipArgv(`/proc/${process.pid}/ns/net`))).toMatch(/^4: /);
    expect(ipArgv('/proc/1234567/ns/net')).toEqual(['nsenter', '--net=/proc/1234567/ns/net', 'ip']);
  });
});
