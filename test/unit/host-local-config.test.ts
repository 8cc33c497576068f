import { describe, expect, it } from 'vitest';
import { CniError } from '../../lib/cni/errors.ts';
import { formatIp, parseIp } from '../../lib/net/ip.ts';
import { candidates } from '../../ipam/host-local/candidates.ts';
import { assignRequested, formatRange, parseHostLocalConf } from '../../ipam/host-local/config.ts';
import { parseResolvConf } from '../../ipam/host-local/dns.ts';
import { parseValidAttachments } from '../../lib/cni/gc.ts';

const net = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'net1', type: 'bridge', ipam: { type: 'host-local', ...ipam }, ...extra });
const ranges = (...sets: Record<string, unknown>[][]) => ({ ranges: sets });

function error(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error('expected a CniError');
}

describe('host-local config', () => {
  it('fills defaults as the reference: .1 gateway, .1 … broadcast-1 range (IPv6: to the last address)', () => {
    const conf = parseHostLocalConf(net(ranges([{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00::/64' }])), undefined);
    expect(conf.storeDir).toBe('/var/lib/cni/networks/net1');
    expect(conf.sets.map((s) => s.map(formatRange))).toEqual([['10.1.2.1-10.1.2.254'], ['fd00::1-fd00::ffff:ffff:ffff:ffff']]);
    expect(conf.sets.map((s) => formatIp(s[0]!.gateway))).toEqual(['10.1.2.1', 'fd00::1']);
  });

  it('orders sets runtimeConfig.ipRanges, then the legacy keys, then ranges', () => {
    const conf = parseHostLocalConf(
      net({ subnet: '10.2.0.0/24', rangeStart: '10.2.0.10', rangeEnd: '10.2.0.20', gateway: '10.2.0.254', ranges: [[{ subnet: '10.3.0.0/24' }]], dataDir: '/tmp/x/' }, { runtimeConfig: { ipRanges: [[{ subnet: '10.1.0.0/24' }]] } }),
      undefined,
    );
    expect(conf.sets.map((s) => formatRange(s[0]!))).toEqual(['10.1.0.1-10.1.0.254', '10.2.0.10-10.2.0.20', '10.3.0.1-10.3.0.254']);
    expect(formatIp(conf.sets[1]![0]!.gateway)).toBe('10.2.0.254');
    expect(conf.storeDir).toBe('/tmp/x/net1');
  });

  it('collects requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips, in that order', () => {
    const conf = parseHostLocalConf(net(ranges([{ subnet: '10.1.2.0/24' }]), { args: { cni: { ips: ['10.1.2.20'] } }, runtimeConfig: { ips: ['fd00::9'] } }), '10.1.2.10');
    expect(conf.requested.map(formatIp)).toEqual(['10.1.2.10', '10.1.2.20', 'fd00::9']);
    const { perSet, leftover } = assignRequested(conf.sets, conf.requested);
    expect(perSet.map((ip) => ip && formatIp(ip))).toEqual(['10.1.2.10']);
    expect(leftover.map(formatIp)).toEqual(['10.1.2.20', 'fd00::9']);
  });

  it('canonicalizes routes and keeps their gateways', () => {
    const conf = parseHostLocalConf(net({ ...ranges([{ subnet: '10.1.2.0/24' }]), routes: [{ dst: 'fd00:0::/64', gw: 'fd00::0:1' }, { dst: '0.0.0.0/0' }] }), undefined);
    expect(conf.routes).toEqual([{ dst: 'fd00::/64', gw: 'fd00::1' }, { dst: '0.0.0.0/0' }]);
  });

  it('matches keys case-insensitively, like Go', () => {
    const conf = parseHostLocalConf({ cniVersion: '1.0.0', name: 'n', IPAM: { Ranges: [[{ Subnet: '10.1.2.0/24', RangeStart: '10.1.2.50' }]] } }, undefined);
    expect(formatRange(conf.sets[0]![0]!)).toBe('10.1.2.50-10.1.2.254');
  });

  it.each([
    ['no ipam', { cniVersion: '1.0.0', name: 'n' }, "IPAM config missing 'ipam' key"],
    ['no ranges', net({}), 'no IP ranges specified'],
    ['empty set', net(ranges([])), 'invalid range set 0: empty range set'],
    ['/31', net(ranges([{ subnet: '10.1.2.0/31' }])), 'invalid range set 0: network 10.1.2.0/31 too small to allocate from'],
    ['/32', net(ranges([{ subnet: '10.1.2.0/32' }])), 'too small'],
    ['/127', net(ranges([{ subnet: 'fd00::/127' }])), 'invalid range set 0: network fd00::/127 too small to allocate from'],
    ['/128', net(ranges([{ subnet: 'fd00::/128' }])), 'too small'],
    ['host bits', net(ranges([{ subnet: '10.1.2.1/24' }])), 'has host bits set: for a subnet mask of length 24 the network address is 10.1.2.0'],
    ['bad CIDR', net(ranges([{ subnet: '10.1.2.0/24x' }])), 'invalid CIDR address: 10.1.2.0/24x'],
    ['bad gateway', net(ranges([{ subnet: '10.1.2.0/24', gateway: '10.1.2.300' }])), 'invalid IP address: 10.1.2.300'],
    ['start outside', net(ranges([{ subnet: '10.1.2.0/24', rangeStart: '10.1.3.1' }])), 'rangeStart 10.1.3.1 not in network 10.1.2.0/24'],
    ['end outside', net(ranges([{ subnet: '10.1.2.0/24', rangeEnd: '10.1.3.1' }])), 'rangeEnd 10.1.3.1 not in network 10.1.2.0/24'],
    ['start is the network', net(ranges([{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.0' }])), 'rangeStart 10.1.2.0 is not a usable address of 10.1.2.0/24'],
    ['end is the broadcast', net(ranges([{ subnet: '10.1.2.0/24', rangeEnd: '10.1.2.255' }])), 'rangeEnd 10.1.2.255 is not a usable address'],
    ['start after end', net(ranges([{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.9', rangeEnd: '10.1.2.8' }])), 'rangeStart 10.1.2.9 is after rangeEnd 10.1.2.8'],
    ['mixed families', net(ranges([{ subnet: '10.1.2.0/24' }, { subnet: 'fd00::/64' }])), 'invalid range set 0: mixed address families'],
    ['overlap in a set', net(ranges([{ subnet: '10.1.2.0/24' }, { subnet: '10.1.2.0/25' }])), 'invalid range set 0: subnets 10.1.2.1-10.1.2.254 and 10.1.2.1-10.1.2.126 overlap'],
    ['overlapping sets', net(ranges([{ subnet: '10.1.2.0/24' }], [{ subnet: '10.1.0.0/16' }])), 'range set 0 overlaps with 1'],
    ['two v4 sets at 0.2.0', { ...net(ranges([{ subnet: '10.1.2.0/24' }], [{ subnet: '10.1.3.0/24' }])), cniVersion: '0.2.0' }, 'CNI version 0.2.0 does not support more than 1 address per family'],
    ['bad requested', net(ranges([{ subnet: '10.1.2.0/24' }]), { args: { cni: { ips: ['nope'] } } }), 'invalid IP address: nope'],
    ['relative dataDir', net({ ...ranges([{ subnet: '10.1.2.0/24' }]), dataDir: 'rel' }), 'at ipam.dataDir: must be an absolute path'],
    ['dataDir with ".."', net({ ...ranges([{ subnet: '10.1.2.0/24' }]), dataDir: '/var/lib/../../etc' }), 'at ipam.dataDir: must not contain a ".." segment'],
    ['relative resolvConf', net({ ...ranges([{ subnet: '10.1.2.0/24' }]), resolvConf: 'resolv.conf' }), 'at ipam.resolvConf: must be an absolute path'],
    ['name with a slash', { ...net(ranges([{ subnet: '10.1.2.0/24' }])), name: '../etc' }, 'invalid network name'],
    ['bad route', net({ ...ranges([{ subnet: '10.1.2.0/24' }]), routes: [{ dst: '0.0.0.0' }] }), 'invalid CIDR address: 0.0.0.0'],
    ['subnet not a string', net(ranges([{ subnet: 24 }])), 'invalid network config'],
  ])('refuses %s with code 7', (_, raw, msg) => {
    const err = error(() => parseHostLocalConf(raw, undefined));
    expect(err.code).toBe(7);
    expect(err.message).toContain(msg);
  });
});

describe('allocation order', () => {
  const set = (...r: Record<string, unknown>[]) => parseHostLocalConf(net(ranges(r)), undefined).sets[0]!;
  const take = (gen: Iterable<{ family: 4 | 6; value: bigint }>, n: number) => {
    const out: string[] = [];
    for (const ip of gen) {
      out.push(formatIp(ip));
      if (out.length === n) break;
    }
    return out;
  };

  it('starts at rangeStart, skips the gateway and wraps once around every range', () => {
    const s = set({ subnet: '10.1.2.0/29' }, { subnet: '10.1.3.0/30' });
    expect(take(candidates(s, undefined), 100)).toEqual(['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6', '10.1.3.2']);
  });

  it('continues after the last reserved address, round-robin, and stops before it comes back', () => {
    const s = set({ subnet: '10.1.2.0/29' });
    expect(take(candidates(s, parseIp('10.1.2.4')), 100)).toEqual(['10.1.2.5', '10.1.2.6', '10.1.2.2', '10.1.2.3', '10.1.2.4']);
    expect(take(candidates(s, parseIp('10.9.9.9')), 100)).toEqual(['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']);
  });

  it('hands out a gateway-less first address when the gateway is elsewhere', () => {
    const s = set({ subnet: '10.1.2.0/29', gateway: '10.1.2.6' });
    expect(take(candidates(s, undefined), 100)).toEqual(['10.1.2.1', '10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5']);
  });

  it('is lazy on huge IPv6 ranges', () => {
    expect(take(candidates(set({ subnet: 'fd00::/64' }), parseIp('fd00::ffff:ffff:ffff:fffe')), 3)).toEqual(['fd00::ffff:ffff:ffff:ffff', 'fd00::2', 'fd00::3']);
  });
});

describe('resolv.conf and GC lists', () => {
  it('reads resolv.conf lines as the reference', () => {
    const text = '# c\n; c\nnameserver 10.0.0.1\nnameserver fd00::53 extra\ndomain example.com\nsearch a.example b.example\noptions ndots:2 edns0\nbogus\n';
    expect(parseResolvConf(text)).toEqual({ nameservers: ['10.0.0.1', 'fd00::53'], domain: 'example.com', search: ['a.example', 'b.example'], options: ['ndots:2', 'edns0'] });
  });

  it('reads valid attachments under either key and refuses a config without one', () => {
    expect(parseValidAttachments({ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] })).toEqual([{ containerID: 'a', ifname: 'eth0' }]);
    expect(parseValidAttachments({ 'cni.dev/attachments': [] })).toEqual([]);
    expect(error(() => parseValidAttachments({})).code).toBe(7);
    expect(error(() => parseValidAttachments({ 'cni.dev/valid-attachments': [{ containerID: 1 }] })).code).toBe(7);
  });
});
