import { describe, expect, it } from 'vitest';
import {
  addIp,
  canonicalIp,
  compareIp,
  contains,
  containsCidr,
  formatCidr,
  formatIp,
  hasHostBits,
  lastAddress,
  network,
  nextIp,
  nthSubnet,
  overlaps,
  parseCidr,
  parseIp,
  parseSubnet,
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

describe('subnets', () => {
  it('parses a prefix written as its network only', () => {
    expect(formatCidr(parseSubnet('10.244.1.0/24')!)).toBe('10.244.1.0/24');
    expect(parseSubnet('10.244.1.1/24')).toBeUndefined();
    expect(parseSubnet('fd00::1/64')).toBeUndefined();
    expect(parseSubnet('10.244.1.0')).toBeUndefined();
  });

  it('canonicalises address text', () => {
    expect(canonicalIp('FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(canonicalIp('10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('010.1.2.3')).toBeUndefined();
    expect(canonicalIp('fe80::1%eth0')).toBeUndefined();
  });

  it('tests whether a prefix lies inside another', () => {
    expect(containsCidr(cidr('10.244.0.0/16'), cidr('10.244.5.0/24'))).toBe(true);
    expect(containsCidr(cidr('10.244.0.0/16'), cidr('10.244.0.0/16'))).toBe(true);
    expect(containsCidr(cidr('10.244.5.0/24'), cidr('10.244.0.0/16'))).toBe(false);
    expect(containsCidr(cidr('10.244.0.0/16'), cidr('10.245.0.0/24'))).toBe(false);
    expect(containsCidr(cidr('10.0.0.0/8'), cidr('fd00::/64'))).toBe(false);
  });

  it('numbers the subnets of a prefix', () => {
    const net = cidr('10.244.0.0/16');
    expect(formatCidr(nthSubnet(net, 24, 0)!)).toBe('10.244.0.0/24');
    expect(formatCidr(nthSubnet(net, 24, 3)!)).toBe('10.244.3.0/24');
    expect(formatCidr(nthSubnet(net, 24, 255)!)).toBe('10.244.255.0/24');
    expect(nthSubnet(net, 24, 256)).toBeUndefined();
    expect(nthSubnet(net, 8, 0)).toBeUndefined();
    expect(formatCidr(nthSubnet(cidr('fd00::/48'), 64, 2)!)).toBe('fd00:0:0:2::/64');
  });
});
