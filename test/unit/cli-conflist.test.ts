import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfList, parseConfList } from '../../cli/conflist.ts';
import { buildPluginConf } from '../../cli/network-list.ts';

describe('conflists as libcni loads them', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-conf-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('picks the highest cniVersions entry we speak, ignoring newer ones', () => {
    const list = parseConfList(JSON.stringify({ name: 'n', cniVersion: '0.4.0', cniVersions: ['1.0.0', '1.1.0', '9.0.0'], plugins: [{ type: 'x' }] }));
    expect(list.cniVersion).toBe('1.1.0');
    expect(parseConfList(JSON.stringify({ name: 'n', cniVersions: [], cniVersion: '0.3.1', plugins: [{ type: 'x' }] })).cniVersion).toBe('0.3.1');
  });

  it('reports libcni\'s errors for malformed lists', () => {
    expect(() => parseConfList('{"plugins":[]}')).toThrow(/no name/);
    expect(() => parseConfList('{"name":"n","plugins":[]}')).toThrow(/no plugins in list/);
    expect(() => parseConfList('{"name":"n","plugins":[{"name":"x"}]}')).toThrow(/missing 'type'/);
    expect(() => parseConfList('{"name":"n","disableCheck":1,"plugins":[{"type":"x"}]}')).toThrow(/disableCheck/);
    expect(parseConfList('{"name":"n","disableCheck":"TRUE","plugins":[{"type":"x"}]}').disableCheck).toBe(true);
  });

  it('finds a network by name: conflists first (sorted), then .conf files upconverted with Go-marshalled bytes', () => {
    const d = dir();
    writeFileSync(join(d, '20-b.conflist'), JSON.stringify({ name: 'b', cniVersion: '1.0.0', plugins: [{ type: 'second' }] }));
    writeFileSync(join(d, '10-b.conflist'), JSON.stringify({ name: 'b', cniVersion: '1.0.0', plugins: [{ type: 'first' }] }));
    writeFileSync(join(d, '30-c.conf'), '{"type":"bridge","name":"c","cniVersion":"0.4.0","z":"<"}');
    expect(loadConfList(d, 'b').plugins[0]!.type).toBe('first');
    const c = loadConfList(d, 'c');
    expect(c.bytes).toBe('{"cniVersion":"0.4.0","name":"c","plugins":[{"cniVersion":"0.4.0","name":"c","type":"bridge","z":"\\u003c"}]}');
    expect(() => loadConfList(d, 'zz')).toThrow(`no net configuration with name "zz" in ${d}`);
    expect(() => loadConfList(join(d, 'nope'), 'zz')).toThrow(/no net configurations found/);
  });

  it('injects name, cniVersion, prevResult and only declared capabilities into each plugin config', () => {
    const list = parseConfList(JSON.stringify({ name: 'n', cniVersion: '1.0.0', plugins: [{ type: 'a', name: 'ignored', capabilities: { portMappings: true, bandwidth: false } }] }));
    const rt = { containerId: 'c', netns: '/x', ifname: 'eth0', args: [], capabilityArgs: { portMappings: [1], bandwidth: {}, ips: ['x'] } };
    const conf = JSON.parse(buildPluginConf(list, list.plugins[0]!, { cniVersion: '1.0.0' }, rt));
    expect(conf).toEqual({ type: 'a', name: 'n', cniVersion: '1.0.0', capabilities: { portMappings: true, bandwidth: false }, prevResult: { cniVersion: '1.0.0' }, runtimeConfig: { portMappings: [1] } });
    expect(JSON.parse(buildPluginConf(list, list.plugins[0]!, undefined, { ...rt, capabilityArgs: undefined }))).not.toHaveProperty('runtimeConfig');
  });
});
