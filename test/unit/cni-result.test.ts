import { describe, expect, it } from 'vitest';
import { parseResult } from '../../lib/cni/result-parse.ts';
import { convertResult, type Result } from '../../lib/cni/result.ts';

const full: Result = {
  interfaces: [
    { name: 'br0', mac: '0a:58:0a:01:00:01' },
    { name: 'eth0', mac: '0a:58:0a:01:00:05', sandbox: '/run/netns/x', mtu: 1450, socketPath: '/s', pciID: '0000:00:01.0' },
  ],
  ips: [
    { interface: 1, address: '10.1.0.5/16', gateway: '10.1.0.1' },
    { interface: 1, address: '10.1.0.6/16' },
    { interface: 1, address: 'fd00::5/64', gateway: 'fd00::1' },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '::/0' },
  ],
  dns: { nameservers: ['10.1.0.1'], search: ['svc'] },
};

describe('convertResult', () => {
  it('0.1.0 and 0.2.0: the first IP of each family as ip4/ip6, routes by family, gateway kept', () => {
    for (const v of ['0.1.0', '0.2.0']) {
      expect(convertResult(full, v)).toEqual({
        cniVersion: v,
        ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }] },
        ip6: { ip: 'fd00::5/64', gateway: 'fd00::1', routes: [{ dst: '::/0' }] },
        dns: { nameservers: ['10.1.0.1'], search: ['svc'] },
      });
    }
  });

  it('0.2.0 with only one family prints only that block', () => {
    expect(convertResult({ ips: [{ address: 'fd00::5/64' }] }, '0.2.0')).toEqual({ cniVersion: '0.2.0', ip6: { ip: 'fd00::5/64' }, dns: {} });
  });

  it('0.2.0 without any IP is code 1 (the shape cannot say it)', () => {
    expect(() => convertResult({ interfaces: [{ name: 'eth0' }] }, '0.1.0')).toThrow(expect.objectContaining({ code: 1 }));
  });

  it('0.3.0, 0.3.1, 0.4.0: ips carry "version" and 1.1-only fields are dropped', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const out = convertResult(full, v) as any;
      expect(out.cniVersion).toBe(v);
      expect(out.ips).toEqual([
        { interface: 1, version: '4', address: '10.1.0.5/16', gateway: '10.1.0.1' },
        { interface: 1, version: '4', address: '10.1.0.6/16' },
        { interface: 1, version: '6', address: 'fd00::5/64', gateway: 'fd00::1' },
      ]);
      expect(out.interfaces[1]).toEqual({ name: 'eth0', mac: '0a:58:0a:01:00:05', sandbox: '/run/netns/x' });
      expect(out.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.1.0.1' }, { dst: '::/0' }]);
    }
  });

  it('1.0.0: no "version" in ips, 1.1-only interface and route fields dropped', () => {
    const out = convertResult(full, '1.0.0') as any;
    expect(out.ips[0]).toEqual({ interface: 1, address: '10.1.0.5/16', gateway: '10.1.0.1' });
    expect(out.interfaces[1]).toEqual({ name: 'eth0', mac: '0a:58:0a:01:00:05', sandbox: '/run/netns/x' });
    expect(out.routes[0]).toEqual({ dst: '0.0.0.0/0', gw: '10.1.0.1' });
    expect(out.dns).toEqual(full.dns);
  });

  it('1.1.0: everything kept', () => {
    expect(convertResult(full, '1.1.0')).toEqual({ cniVersion: '1.1.0', ...full });
  });

  it('omits empty lists and always prints dns', () => {
    expect(convertResult({ interfaces: [], ips: [{ address: '10.0.0.2/24' }], routes: [] }, '1.0.0')).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }], dns: {} });
  });

  it('does not change its input', () => {
    const copy = structuredClone(full);
    convertResult(full, '0.3.1');
    convertResult(full, '0.2.0');
    expect(full).toEqual(copy);
  });
});

describe('parseResult', () => {
  it('reads the 0.2.0 shape into ips and routes', () => {
    const r = parseResult({ cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }] }, ip6: { ip: 'fd00::5/64' }, dns: { nameservers: ['1.1.1.1'] } }, '1.0.0');
    expect(r).toEqual({
      cniVersion: '0.2.0',
      ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1' }, { address: 'fd00::5/64' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      dns: { nameservers: ['1.1.1.1'] },
    });
  });

  it('drops "version" from 0.3/0.4 ips and keeps unknown keys', () => {
    const r = parseResult({ cniVersion: '0.4.0', interfaces: [{ name: 'eth0', vendor: 'x' }], ips: [{ version: '4', interface: 0, address: '10.1.0.5/16' }] }, '1.0.0');
    expect(r.ips).toEqual([{ interface: 0, address: '10.1.0.5/16' }]);
    expect(r.interfaces).toEqual([{ name: 'eth0', vendor: 'x' }]);
  });

  it('uses the fallback version when the result has none, and accepts nulls', () => {
    expect(parseResult({ ip4: { ip: '10.0.0.2/24' } }, '0.2.0').ips).toEqual([{ address: '10.0.0.2/24' }]);
    expect(parseResult({ interfaces: null, ips: null, routes: null, dns: null }, '1.0.0')).toEqual({ cniVersion: '1.0.0', interfaces: undefined, ips: undefined, routes: undefined });
  });

  it('round-trips through every version', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      const back = parseResult(convertResult(full, v), '1.1.0');
      expect(back.ips, v).toEqual(full.ips);
    }
    const legacy = parseResult(convertResult(full, '0.2.0'), '1.1.0');
    expect(legacy.ips).toEqual([{ address: '10.1.0.5/16', gateway: '10.1.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1' }]);
  });

  it('a malformed result is code 6 naming the path', () => {
    expect(() => parseResult({ cniVersion: '1.0.0', ips: [{ address: 5 }] }, '1.0.0')).toThrow(expect.objectContaining({ code: 6, details: 'ips.0.address: expected string, got number' }));
    expect(() => parseResult({ cniVersion: '0.2.0', ip4: { gateway: '10.0.0.1' } }, '1.0.0')).toThrow(expect.objectContaining({ code: 6, details: 'ip4.ip: expected string, got nothing' }));
  });
});
