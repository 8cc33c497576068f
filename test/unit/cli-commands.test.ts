import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../cli/index.ts';
import { findLeaks } from '../../cli/ipam-command.ts';
import { checkBridge, checkConfigs, delegatedIpam, findStaleRules, loadUsedPlugins, type BridgeExpectation } from '../../cli/doctor.ts';
import { scanConfDir } from '../../cli/conflist.ts';
import type { Exec } from '../../lib/exec.ts';
import { loadPlugin, pluginNames } from '../../plugins/registry.ts';
import { parseValid } from '../../cli/network-command.ts';
import { parseCidr, parseIp } from '../../lib/net/ip.ts';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import type { CachedAttachment } from '../../cli/cache.ts';

async function cli(args: string[], env: Record<string, string> = {}, exec?: Exec) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { writeStdout: (t) => (stdout += t), writeStderr: (t) => (stderr += t), env, ...(exec ? { exec } : {}) });
  return { code, stdout, stderr };
}

describe('tscni dispatch and exit codes', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('lists every subcommand in help and gives each its own --help', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const sub of ['add', 'check', 'del', 'gc', 'status', 'ipam', 'doctor', 'version']) {
      expect(help.stdout).toContain(`  ${sub} `);
      if (sub !== 'version') {
        const own = await cli([sub, '--help']);
        expect(own.code, sub).toBe(0);
        expect(own.stdout).toMatch(new RegExp(`tscni ${sub}`));
      }
    }
  });

  it('exits 2 on usage errors and 1 on failures, with a CNI-shaped error under --json', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['add'])).code).toBe(2);
    expect((await cli(['add', 'net'])).code).toBe(2);
    expect((await cli(['add', 'net', '/x', '--bogus'])).code).toBe(2);
    expect((await cli(['ipam', 'frob'])).code).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'cli-cmd-'));
    dirs.push(dir);
    const missing = await cli(['add', 'nonet', '/run/netns/none', '--json', '--conf-dir', dir]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ code: 999, msg: `no net configurations found in ${dir}` });
    expect(missing.stderr).toContain('no net configurations found');
  });

  it('lists reservations from a host-local store and finds the leaked ones', async () => {
    const data = mkdtempSync(join(tmpdir(), 'cli-ipam-'));
    const cache = mkdtempSync(join(tmpdir(), 'cli-cache-'));
    dirs.push(data, cache);
    mkdirSync(join(data, 'net1'));
    writeFileSync(join(data, 'net1', '10.1.0.10'), 'live\r\neth0');
    writeFileSync(join(data, 'net1', '10.1.0.9'), 'dead\r\neth0');
    writeFileSync(join(data, 'net1', 'last_reserved_ip.0'), '10.1.0.10');
    writeFileSync(join(data, 'net1', 'lock'), '');
    mkdirSync(join(cache, 'results'));
    writeFileSync(join(cache, 'results', 'net1-live-eth0'), JSON.stringify({ kind: 'cniCacheV1', containerId: 'live', ifName: 'eth0', networkName: 'net1', config: '' }));
    const ls = await cli(['ipam', 'ls', '--json', '--data-dir', data]);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout).map((r: any) => [r.address, r.containerID, r.ifname])).toEqual([['10.1.0.9', 'dead', 'eth0'], ['10.1.0.10', 'live', 'eth0']]);
    const human = await cli(['ipam', 'ls', 'net1', '--data-dir', data]);
    expect(human.stdout).toMatch(/^NETWORK\s+ADDRESS\s+CONTAINER\s+IFNAME\s+SINCE\n/);
    const leaks = await cli(['ipam', 'leaks', '--json', '--data-dir', data, '--cache-dir', cache]);
    expect(leaks.code).toBe(1);
    expect(JSON.parse(leaks.stdout)).toEqual([expect.objectContaining({ address: '10.1.0.9', containerID: 'dead', reason: 'no cached attachment', fix: 'CNI_CONTAINERID=dead CNI_IFNAME=eth0 tscni del net1' })]);
  });
});

describe('leaks, stale rules and bridges (pure)', () => {
  const attachment = (containerId: string, netns?: string): CachedAttachment => ({ kind: 'cniCacheV1', containerId, ifName: 'eth0', networkName: 'n', netns, config: '', file: '' });
  const reservation = (containerID: string) => ({ network: 'n', address: '10.0.0.2', containerID, ifname: 'eth0', since: '', file: '' });

  it('a reservation leaks when its attachment is not cached or its netns is gone', () => {
    const cached = [attachment('a', '/run/netns/alive'), attachment('b', '/run/netns/dead'), attachment('c')];
    const leaks = findLeaks([reservation('a'), reservation('b'), reservation('c'), reservation('d')], cached, (p) => p === '/run/netns/alive');
    expect(leaks.map((l) => [l.containerID, l.reason, l.fix])).toEqual([
      ['b', 'netns gone: /run/netns/dead', 'tscni gc n'],
      ['d', 'no cached attachment', 'CNI_CONTAINERID=d CNI_IFNAME=eth0 tscni del n'],
    ]);
  });

  it('finds masquerade and portmap rules of attachments that are gone, with the commands removing them', () => {
    const saved = parseIptablesSave(`*nat
:CNI-e5e4b977c1f1ab9129267d8a - [0:0]
:CNI-DN-e5e4b977c1f1ab9129267 - [0:0]
-A POSTROUTING -s 10.99.0.2/32 -m comment --comment "name: \\"n\\" id: \\"gone\\"" -j CNI-e5e4b977c1f1ab9129267d8a
-A POSTROUTING -s 10.99.0.3/32 -m comment --comment "name: \\"n\\" id: \\"live\\"" -j CNI-403274e7d3a251391596bdd5
-A CNI-e5e4b977c1f1ab9129267d8a ! -d 224.0.0.0/4 -m comment --comment "name: \\"n\\" id: \\"gone\\"" -j MASQUERADE
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"n\\" id: \\"gone\\"" -m multiport --dports 18080 -j CNI-DN-e5e4b977c1f1ab9129267
COMMIT
`);
    const findings = findStaleRules(saved, new Set(['n/live']));
    expect(findings).toHaveLength(1);
    expect(findings[0]!.message).toContain('4 iptables nat rule(s)/chain(s) left by network "n" container gone');
    expect(findings[0]!.fix!.split(' && ')).toEqual([
      `iptables -t nat -D POSTROUTING -s 10.99.0.2/32 -m comment --comment 'name: "n" id: "gone"' -j CNI-e5e4b977c1f1ab9129267d8a`,
      `iptables -t nat -D CNI-HOSTPORT-DNAT -p tcp -m comment --comment 'dnat name: "n" id: "gone"' -m multiport --dports 18080 -j CNI-DN-e5e4b977c1f1ab9129267`,
      'iptables -t nat -F CNI-e5e4b977c1f1ab9129267d8a',
      'iptables -t nat -F CNI-DN-e5e4b977c1f1ab9129267',
      'iptables -t nat -X CNI-e5e4b977c1f1ab9129267d8a',
      'iptables -t nat -X CNI-DN-e5e4b977c1f1ab9129267',
    ]);
  });

  it('checks a bridge against its IPAM gateway', () => {
    const want: BridgeExpectation = { network: 'n', bridge: 'br9', isGateway: true, subnets: [{ subnet: parseCidr('10.9.0.0/24')!, gateway: parseIp('10.9.0.1')! }] };
    expect(checkBridge(want, undefined, 0)[0]!.severity).toBe('ok');
    expect(checkBridge(want, undefined, 2)[0]).toMatchObject({ severity: 'problem', fix: 'tscni gc n' });
    expect(checkBridge(want, { up: true, addrs: [] }, 1)[0]).toMatchObject({ severity: 'problem', fix: 'ip addr add 10.9.0.1/24 dev br9' });
    expect(checkBridge(want, { up: false, addrs: [parseCidr('10.9.0.1/24')!] }, 1)[0]).toMatchObject({ severity: 'problem', fix: 'ip link set br9 up' });
    expect(checkBridge(want, { up: true, addrs: [parseCidr('10.9.0.1/24')!] }, 1)[0]!.severity).toBe('ok');
  });

  it('parses --valid lists', () => {
    expect(parseValid(['a/eth0,b/net1', 'c/eth0'])).toEqual([{ containerID: 'a', ifname: 'eth0' }, { containerID: 'b', ifname: 'net1' }, { containerID: 'c', ifname: 'eth0' }]);
    expect(() => parseValid(['a'])).toThrow(/CONTAINERID\/IFNAME/);
    expect(() => parseValid(['../x/eth0'])).toThrow();
  });
});

describe('doctor: configs checked by each plugin\'s own parser', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const confDir = (files: Record<string, unknown>) => {
    const dir = mkdtempSync(join(tmpdir(), 'tscni-doctor-'));
    dirs.push(dir);
    for (const [name, doc] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(doc));
    return dir;
  };
  const list = (name: string, ...plugins: unknown[]) => ({ cniVersion: '1.0.0', name, plugins });
  const hostLocal = { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]] };
  /** No kernel in unit tests: every command doctor would run fails, which it reports as a warning. */
  const noKernel: Exec = {
    runAsync: () => Promise.reject(new Error('no kernel here')),
  };

  it('validates with every plugin of the registry', async () => {
    const plugins = await loadUsedPlugins([{ plugins: pluginNames().map((type) => ({ type })) }]);
    expect([...plugins.keys()].sort()).toEqual(pluginNames().sort());
  });

  it('reports a bad bridge config with the key path, through tscni doctor --json', async () => {
    const dir = confDir({
      '10-bad.conflist': list('bad', { type: 'bridge', bridge: 'br-x', mtu: 'big', ipam: hostLocal }),
      '20-good.conflist': list('good', { type: 'bridge', bridge: 'br-y', isGateway: true, ipam: hostLocal }, { type: 'portmap', capabilities: { portMappings: true } }),
    });
    const out = await cli(['doctor', '--json', '--conf-dir', dir, '--cni-path', dir, '--cache-dir', dir, '--data-dir', dir], {}, noKernel);
    expect(out.code).toBe(1);
    const configs = JSON.parse(out.stdout).findings.filter((f: { check: string }) => f.check === 'config');
    const bad = configs.find((f: { message: string }) => f.message.includes('10-bad.conflist'));
    expect(bad.severity).toBe('problem');
    expect(bad.message).toContain('plugin 0 (bridge): invalid network config at mtu: expected number, got string');
    expect(configs.find((f: { message: string }) => f.message.includes('20-good.conflist')).message).not.toContain('invalid');
  });

  it('applies checks beyond the schema, and checks the IPAM config a plugin delegates to', async () => {
    const scanned = scanConfDir(
      confDir({
        'a.conflist': list('a', { type: 'bridge', hairpinMode: true, promiscMode: true, ipam: hostLocal }),
        'b.conflist': list('b', { type: 'bridge', ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.1/16' }]] } }),
        'c.conflist': list('c', { type: 'vxlan', network: '10.244.0.0/16', subnet: '10.245.1.0/24', ipam: { type: 'host-local', dataDir: '/tmp/x' } }),
        'd.conflist': list('d', { type: 'bandwidth', ingressRate: 1000 }),
        'e.conflist': list('e', { type: 'macvlan', master: 'eth0', ipam: { type: 'dhcp' } }),
      }),
    );
    const lists = scanned.flatMap((s) => (s.list ? [s.list] : []));
    const plugins = await loadUsedPlugins(lists);
    expect([...plugins.keys()].sort()).toEqual(['bandwidth', 'bridge', 'host-local', 'vxlan']);
    const findings = checkConfigs(scanned, () => '/found', pluginNames(), '/tscni', '/opt/cni/bin', plugins);
    const about = (file: string) => findings.find((f) => f.message.includes(`/${file}:`))!;
    expect(about('a.conflist').message).toContain('cannot set hairpin mode and promiscuous mode at the same time');
    expect(about('b.conflist').message).toContain('plugin 0 (bridge) ipam (host-local): invalid range set 0: network 10.88.0.1/16 has host bits set');
    expect(about('c.conflist').message).toContain('subnet 10.245.1.0/24 is not inside network 10.244.0.0/16');
    expect(about('c.conflist').message).not.toContain('ipam (host-local)'); // vxlan writes its bridge's IPAM itself
    expect(about('d.conflist').message).toContain('if ingressRate is set, ingressBurst must also be set');
    expect(about('e.conflist').severity).toBe('ok'); // not ours: only found in CNI_PATH
    expect(delegatedIpam({ type: 'vxlan', ipam: { type: 'host-local' } }, await loadPlugin('vxlan'))).toBeUndefined();
    expect(delegatedIpam({ type: 'macvlan', ipam: { type: 'host-local' } }, undefined)).toBe('host-local');
  });
});

describe('usage errors', () => {
  it('tscni vxlan --log with an unknown level is a usage error (exit 2) naming the levels', async () => {
    const { runVxlanCli } = await import('../../cli/vxlan.ts');
    let stderr = '';
    const code = await runVxlanCli(['sync', '--conf', '/nonexistent.conf', '--log', 'verbose'], { writeStdout: () => {}, writeStderr: (t) => (stderr += t) });
    expect(code).toBe(2);
    expect(stderr).toContain('unknown --log level "verbose": use one of error, warn, info, debug');
  });

  it('an option named like an Object prototype member is unknown, not a crash', async () => {
    const { parseArgs } = await import('../../cli/args.ts');
    for (const name of ['constructor', 'toString', '__proto__']) expect(() => parseArgs([`--${name}`], {})).toThrow(`unknown option --${name}`);
  });
});
