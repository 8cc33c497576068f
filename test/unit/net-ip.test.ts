import { describe, expect, it } from 'vitest';
import {
  addIp,
  compareIp,
  contains,
  formatCidr,
  formatIp,
  hasHostBits,
  lastAddress,
  network,
  nextIp,
  overlaps,
  parseCidr,
  parseIp,
  prevIp,
  size,
} from '../../lib/net/ip.ts';

const ip = (t: string) => parseIp(t)!;
const cidr = (t: string) => parseCidr(t)!;

describe('parseIp / formatIp', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['fd00::1', 'fd00::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['::10.1.2.3', '::a01:203'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ])('%s prints as %s', (text, canonical) => {
    expect(formatIp(ip(text))).toBe(canonical);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', 'a.b.c.d', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'fe80::1%eth0', '1.2.3.4::', ' 1.2.3.4', 'g::1', '::1:2:3:4:5:6:7:8'])(
    '%j is not an address',
    (text) => {
      expect(parseIp(text)).toBeUndefined();
    },
  );

  it('knows the family', () => {
    expect(ip('10.0.0.1').family).toBe(4);
    expect(ip('fd00::1').family).toBe(6);
    expect(ip('10.0.0.1').value).toBe(0x0a000001n);
  });
});

describe('CIDR math', () => {
  it('parses prefixes and rejects bad ones', () => {
    expect(formatCidr(cidr('10.1.2.0/24'))).toBe('10.1.2.0/24');
    expect(formatCidr(cidr('fd00:0::/64'))).toBe('fd00::/64');
    for (const bad of ['10.1.2.0', '10.1.2.0/33', 'fd00::/129', '10.1.2.0/024', '10.1.2.0/', '10.1.2.0/x', '/24']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it('computes network, last address, size and host bits', () => {
    const c = cidr('10.1.2.77/24');
    expect(formatIp(network(c))).toBe('10.1.2.0');
    expect(formatIp(lastAddress(c))).toBe('10.1.2.255');
    expect(size(c)).toBe(256n);
    expect(hasHostBits(c)).toBe(true);
    expect(hasHostBits(cidr('10.1.2.0/24'))).toBe(false);
    expect(formatIp(lastAddress(cidr('fd00::/64')))).toBe('fd00::ffff:ffff:ffff:ffff');
    expect(formatIp(network(cidr('fd00::1:2/112')))).toBe('fd00::1:0');
    expect(size(cidr('0.0.0.0/0'))).toBe(1n << 32n);
  });

  it('tests containment within a family only', () => {
    expect(contains(cidr('10.1.2.0/24'), ip('10.1.2.255'))).toBe(true);
    expect(contains(cidr('10.1.2.0/24'), ip('10.1.3.0'))).toBe(false);
    expect(contains(cidr('::/0'), ip('10.1.2.3'))).toBe(false);
    expect(contains(cidr('0.0.0.0/0'), ip('10.1.2.3'))).toBe(true);
  });

  it('detects overlap both ways', () => {
    expect(overlaps(cidr('10.0.0.0/8'), cidr('10.1.2.0/24'))).toBe(true);
    expect(overlaps(cidr('10.1.2.0/24'), cidr('10.0.0.0/8'))).toBe(true);
    expect(overlaps(cidr('10.1.2.0/24'), cidr('10.1.3.0/24'))).toBe(false);
    expect(overlaps(cidr('fd00::/64'), cidr('fd00::/48'))).toBe(true);
    expect(overlaps(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
  });

  it('steps through addresses without leaving the family', () => {
    expect(formatIp(nextIp(ip('10.1.2.255'))!)).toBe('10.1.3.0');
    expect(formatIp(prevIp(ip('fd00::1:0'))!)).toBe('fd00::ffff');
    expect(nextIp(ip('255.255.255.255'))).toBeUndefined();
    expect(prevIp(ip('::'))).toBeUndefined();
    expect(formatIp(addIp(ip('10.0.0.0'), 300n)!)).toBe('10.0.1.44');
    expect(compareIp(ip('10.0.0.2'), ip('10.0.0.10'))).toBeLessThan(0);
    expect(compareIp(ip('::'), ip('255.255.255.255'))).toBeGreaterThan(0);
  });
});
