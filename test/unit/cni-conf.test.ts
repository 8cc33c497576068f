import * as z from 'zod/mini';
import { describe, expect, it } from 'vitest';
import { canonicalizeKeys, NetConf, parseConf } from '../../lib/cni/conf.ts';
import { parseJsonObject, readNetConf } from '../../lib/cni/netconf.ts';

const PortMapping = z.looseObject({ hostPort: z.number(), containerPort: z.number(), protocol: z.optional(z.string()), hostIP: z.optional(z.string()) });
const Conf = z.looseObject({
  name: z.string(),
  runtimeConfig: z.optional(
    z.looseObject({
      portMappings: z.optional(z.array(PortMapping)),
      bandwidth: z.optional(z.nullable(z.looseObject({ ingressRate: z.number() }))),
      ipRanges: z.optional(z.array(z.array(z.looseObject({ subnet: z.string() })))),
      byName: z.optional(z.record(z.string(), z.looseObject({ mtu: z.number() }))),
    }),
  ),
  mtu: z.optional(z.number().check(z.minimum(68), z.maximum(65535))),
  mode: z.optional(z.enum(['bridge', 'l2'])),
});

describe('parseJsonObject', () => {
  it('accepts a JSON object', () => {
    expect(parseJsonObject('{"name":"n"}')).toEqual({ name: 'n' });
  });
  it('anything else is code 6 saying what could not be decoded', () => {
    for (const s of ['', '{', '[]', 'null', '1', '"x"', '{"a":1}x']) expect(() => parseJsonObject(s), s).toThrow(expect.objectContaining({ code: 6 }));
    expect(() => parseJsonObject('[]', 'prevResult')).toThrow('cannot decode prevResult: expected a JSON object');
  });
});

describe('canonicalizeKeys: keys match case-insensitively, as Go encoding/json', () => {
  it('CRI HostPort and podman hostPort both land on hostPort, inside arrays', () => {
    const cri = { name: 'n', runtimeConfig: { PortMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] } };
    const podman = { name: 'n', runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } };
    expect(canonicalizeKeys(cri, Conf)).toEqual({ name: 'n', runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }] } });
    expect(parseConf(Conf, cri).runtimeConfig?.portMappings?.[0]?.hostPort).toBe(8080);
    expect(parseConf(Conf, podman).runtimeConfig?.portMappings?.[0]?.hostPort).toBe(8080);
  });

  it('reaches through nullable, nested arrays and records', () => {
    const raw = { NAME: 'n', runtimeConfig: { Bandwidth: { IngressRate: 5 }, IPRanges: [[{ Subnet: '10.0.0.0/24' }]], ByName: { eth0: { MTU: 1400 } } } };
    expect(canonicalizeKeys(raw, Conf)).toEqual({ name: 'n', runtimeConfig: { bandwidth: { ingressRate: 5 }, ipRanges: [[{ subnet: '10.0.0.0/24' }]], byName: { eth0: { mtu: 1400 } } } });
  });

  it('an exact spelling wins over a case-insensitive one; unknown keys are kept as they are', () => {
    expect(canonicalizeKeys({ name: 'exact', Name: 'other', Extra: 1 }, Conf)).toEqual({ name: 'exact', Extra: 1 });
    expect(canonicalizeKeys({ Name: 'other', name: 'exact' }, Conf)).toEqual({ name: 'exact' });
  });

  it('leaves values of the wrong shape for the schema to reject', () => {
    expect(canonicalizeKeys({ name: 'n', runtimeConfig: [1] }, Conf)).toEqual({ name: 'n', runtimeConfig: [1] });
  });
});

describe('parseConf', () => {
  it('keeps unknown keys (runtimes add prevResult, runtimeConfig, args)', () => {
    expect(parseConf(NetConf(), { name: 'n', type: 't', custom: { a: 1 } })).toEqual({ name: 'n', type: 't', custom: { a: 1 } });
  });

  it('is code 7 with the first offending key in msg and every issue in details', () => {
    let err: any;
    try {
      parseConf(Conf, { name: 1, mtu: 10, mode: 'x', runtimeConfig: { portMappings: [{ hostPort: '80', containerPort: 80 }] } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 7, message: 'invalid network config at name: expected string, got number' });
    expect(err.details).toBe(
      'name: expected string, got number; runtimeConfig.portMappings.0.hostPort: expected number, got string; mtu: must be >= 68; mode: must be one of "bridge", "l2"',
    );
  });

  it('a key named like an Object prototype member is code 7 naming it, at any depth and in any case', () => {
    for (const key of ['constructor', 'toString', 'ToString', 'hasOwnProperty', 'valueOf']) {
      expect(() => parseConf(Conf, { name: 'n', [key]: 1 }), key).toThrow(expect.objectContaining({ code: 7, message: `invalid network config at ${key}: key "${key}" is reserved` }));
    }
    const proto = JSON.parse('{"name":"n","runtimeConfig":{"portMappings":[{"__proto__":{"hostPort":1}}]}}');
    expect(() => parseConf(Conf, proto)).toThrow(expect.objectContaining({ code: 7, message: 'invalid network config at runtimeConfig.portMappings.0.__proto__: key "__proto__" is reserved' }));
    expect(() => parseConf(Conf, { name: 'n', runtimeConfig: { byName: { constructor: { mtu: 1500 } } } })).toThrow(expect.objectContaining({ code: 7 }));
  });

  it('a field spelled like an inherited name is not found through the prototype', () => {
    const Shape = z.looseObject({ name: z.string(), mtu: z.optional(z.number()) });
    expect(canonicalizeKeys({ name: 'n', MTU: 9000, extra: 1 }, Shape)).toEqual({ name: 'n', mtu: 9000, extra: 1 });
    expect(Object.getPrototypeOf(canonicalizeKeys({ name: 'n' }, Shape))).toBe(Object.prototype);
  });

  it('the network name has the spec\'s form (libcni and the reference skel check the same pattern)', () => {
    for (const name of ['n', 'lo-net', 'A.b_c-9', '0']) expect(parseConf(NetConf(), { name }).name).toBe(name);
    for (const name of ['-n', '.n', '_n', 'a b', 'a/b', '..', 'a\u0000b', 'n\n', 'ü', 'a\ufffdb', 'n;rm']) {
      expect(() => parseConf(NetConf(), { name }), JSON.stringify(name)).toThrow(
        expect.objectContaining({ code: 7, message: 'invalid network config at name: must start with a letter or digit and contain only letters, digits, "_", "." and "-"' }),
      );
    }
  });

  it('a custom schema message is kept', () => {
    expect(() => parseConf(NetConf(), { name: '' })).toThrow('invalid network config at name: missing network name');
  });
});

describe('readNetConf (the hot path) agrees with the NetConf schema', () => {
  const cases: Record<string, unknown>[] = [
    { name: 'n' },
    { name: 'n', cniVersion: '1.0.0', type: 'bridge', ipam: { type: 'host-local', subnet: '10.0.0.0/24' }, args: null, runtimeConfig: null, prevResult: { ips: [] }, extra: 1 },
    { name: 'n', args: { cni: { ips: ['10.0.0.2'] } }, runtimeConfig: { portMappings: [] } },
    {},
    { name: '' },
    { name: 42 },
    { name: null },
    { name: ['a'] },
    { name: 'n', cniVersion: 1 },
    { name: 'n', type: false },
    { name: 'n', ipam: 'host-local' },
    { name: 'n', ipam: [] },
    { name: 'n', ipam: { type: 3 } },
    { name: 'n', args: 'x' },
    { name: 'n', args: [1] },
    { name: 'n', runtimeConfig: 7 },
    { name: '-n' },
    { name: 'a\u0000b' },
    { name: 'n\n' },
  ];
  const verdict = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (e: any) {
      return { code: e.code, msg: e.message };
    }
  };
  for (const raw of cases) {
    it(JSON.stringify(raw), () => {
      expect(verdict(() => readNetConf(raw))).toEqual(verdict(() => parseConf(NetConf(), raw)));
    });
  }
});
