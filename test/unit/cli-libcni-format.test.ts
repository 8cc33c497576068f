import { describe, expect, it } from 'vitest';
import { formatCacheEntry, parseCacheEntry } from '../../cli/cache.ts';
import { goMarshal } from '../../cli/go-json.ts';
import { goResultAsVersion, toGoResult } from '../../cli/go-result.ts';
import { containerIdForNetns, parseCnitoolArgs, buildRuntimeConf } from '../../cli/runtime-conf.ts';

// Written by cnitool (libcni 1.1.2) for a reference bridge+portmap ADD; our writer must match it byte for byte.
const CONFLIST = '{"cniVersion":"1.0.0","name":"h4net","plugins":[{"type":"bridge","bridge":"h4br0","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.99.0.0/24"}]],"dataDir":"/tmp/h4/data","routes":[{"dst":"0.0.0.0/0"}]}},{"type":"portmap","capabilities":{"portMappings":true}}]}\n';
const LIBCNI_CACHE =
  '{"kind":"cniCacheV1","containerId":"cnitool-f8a1b196e40f2a76515d","config":"eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoiaDRuZXQiLCJwbHVnaW5zIjpbeyJ0eXBlIjoiYnJpZGdlIiwiYnJpZGdlIjoiaDRicjAiLCJpc0dhdGV3YXkiOnRydWUsImlwTWFzcSI6dHJ1ZSwiaXBhbSI6eyJ0eXBlIjoiaG9zdC1sb2NhbCIsInJhbmdlcyI6W1t7InN1Ym5ldCI6IjEwLjk5LjAuMC8yNCJ9XV0sImRhdGFEaXIiOiIvdG1wL2g0L2RhdGEiLCJyb3V0ZXMiOlt7ImRzdCI6IjAuMC4wLjAvMCJ9XX19LHsidHlwZSI6InBvcnRtYXAiLCJjYXBhYmlsaXRpZXMiOnsicG9ydE1hcHBpbmdzIjp0cnVlfX1dfQo=","ifName":"eth0","networkName":"h4net","capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":18080,"protocol":"tcp"}]},"result":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"mac":"16:aa:5b:60:bd:5b","name":"h4br0"},{"mac":"2e:29:76:24:6d:29","name":"veth0d112ac9"},{"mac":"72:c8:8b:f2:77:8e","name":"eth0","sandbox":"/run/netns/h4a"}],"ips":[{"address":"10.99.0.2/24","gateway":"10.99.0.1","interface":2}],"routes":[{"dst":"0.0.0.0/0"}]}}';

describe('libcni formats', () => {
  it('derives the container ID from the netns path exactly as cnitool does', () => {
    expect(containerIdForNetns('/run/netns/h4a')).toBe('cnitool-f8a1b196e40f2a76515d');
  });

  it('writes the result cache byte for byte as libcni 1.1.2 (plus netns, as libcni ≥ 1.2)', () => {
    const result = toGoResult(JSON.parse(goMarshal(parseCacheEntry(LIBCNI_CACHE, 'f')!.result)), '1.0.0');
    const rt = { containerId: 'cnitool-f8a1b196e40f2a76515d', netns: '', ifname: 'eth0', args: [], capabilityArgs: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } };
    expect(formatCacheEntry('h4net', CONFLIST, rt, result)).toBe(LIBCNI_CACHE);
    const withNetns = formatCacheEntry('h4net', CONFLIST, { ...rt, netns: '/run/netns/h4a', args: [['K', 'V']] }, result);
    expect(withNetns).toContain('"networkName":"h4net","netns":"/run/netns/h4a","cniArgs":[["K","V"]],"capabilityArgs"');
    const back = parseCacheEntry(withNetns, 'f')!;
    expect(back).toMatchObject({ config: CONFLIST, netns: '/run/netns/h4a', cniArgs: [['K', 'V']], containerId: rt.containerId, ifName: 'eth0' });
  });

  it('skips cache files that are not cniCacheV1 entries', () => {
    expect(parseCacheEntry('{"kind":"other"}', 'f')).toBeUndefined();
    expect(parseCacheEntry('not json', 'f')).toBeUndefined();
  });

  it('marshals like Go: sorted keys, HTML-safe escapes, indentation', () => {
    expect(goMarshal({ b: 1, a: ['<&>', '\u2028'], c: { z: null, y: true } })).toBe('{"a":["\\u003c\\u0026\\u003e","\\u2028"],"b":1,"c":{"y":true,"z":null}}');
    expect(goMarshal({ b: [], a: {} }, { sortKeys: false, indent: '    ' })).toBe('{\n    "b": [],\n    "a": {}\n}');
    expect(goMarshal('a\u0001\n')).toBe('"a\\u0001\\n"');
  });
});

describe('results as libcni decodes them', () => {
  it('keeps only the fields of the spec version\'s Go struct, keeps interface 0, always has dns', () => {
    const raw = { cniVersion: '1.0.0', extra: 1, Interfaces: [{ name: 'eth0', mac: '', sandbox: '/x', mtu: 1500 }], ips: [{ interface: 0, address: '10.0.0.2/24', version: '4' }] };
    expect(toGoResult(raw, '1.0.0')).toEqual({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ interface: 0, address: '10.0.0.2/24' }], dns: {} });
  });

  it('fills a missing cniVersion from the config and refuses unknown versions', () => {
    expect(toGoResult({ ips: [{ version: '4', address: '10.0.0.2/24' }] }, '0.4.0')).toEqual({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }], dns: {} });
    expect(() => toGoResult({ cniVersion: '9.9.9' }, '1.0.0')).toThrow(/unsupported CNI result version/);
  });

  it('converts a cached result to the config version (GetAsVersion)', () => {
    const cached = { cniVersion: '1.0.0', ips: [{ interface: 1, address: '10.0.0.2/24', gateway: '10.0.0.1' }], dns: {} };
    expect(goResultAsVersion(cached, '0.4.0')).toEqual({ cniVersion: '0.4.0', ips: [{ version: '4', interface: 1, address: '10.0.0.2/24', gateway: '10.0.0.1' }], dns: {} });
    expect(goResultAsVersion(cached, '0.2.0')).toEqual({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1' }, dns: {} });
  });
});

describe('runtime config from env, as cnitool', () => {
  it('parses CNI_ARGS pairs and refuses malformed ones', () => {
    expect(parseCnitoolArgs('A=1;B=2')).toEqual([['A', '1'], ['B', '2']]);
    expect(() => parseCnitoolArgs('A=1;B')).toThrow(/invalid CNI_ARGS pair "B"/);
    expect(() => parseCnitoolArgs('A=')).toThrow();
  });

  it('defaults ifname to eth0, derives the ID, and validates what names files', () => {
    const rt = buildRuntimeConf({ netns: '/run/netns/h4a', env: {}, capArgs: undefined, needsContainer: true });
    expect(rt).toEqual({ containerId: 'cnitool-f8a1b196e40f2a76515d', netns: '/run/netns/h4a', ifname: 'eth0', args: [], capabilityArgs: undefined });
    expect(() => buildRuntimeConf({ netns: '/x', env: { CNI_CONTAINERID: '../etc' }, capArgs: undefined, needsContainer: true })).toThrow(/invalid container ID/);
    expect(() => buildRuntimeConf({ netns: '/x', env: { CNI_IFNAME: 'a/b' }, capArgs: undefined, needsContainer: true })).toThrow(/CNI_IFNAME/);
    expect(() => buildRuntimeConf({ netns: undefined, env: {}, capArgs: undefined, needsContainer: true })).toThrow(/netns path or CNI_CONTAINERID/);
    expect(() => buildRuntimeConf({ netns: '/x', env: {}, capArgs: '[1]', needsContainer: true })).toThrow(/CAP_ARGS/);
  });
});
