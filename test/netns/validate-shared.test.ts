import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin, writeConflist } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';

/**
 * `tscni doctor` and ADD share each plugin's `validate`: the same bad configs, fed to the built
 * binary's ADD in a fresh netns and to `tscni doctor` over a conf dir holding them, are refused by
 * both with the same message, and ADD refuses before touching anything.
 */
describe('doctor and ADD refuse the same configs', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** One bad plugin config per row: its type, the config, the message ADD returns (and doctor prints). */
  function badConfigs(bridge: string, dataDir: string) {
    const hostLocal = { type: 'host-local', ranges: [[{ subnet: '10.211.0.0/24' }]], dataDir };
    return [
      { type: 'bridge', conf: { bridge, vlan: 10, isGateway: true, ipam: hostLocal }, msg: 'vlan together with isGateway is not supported' },
      { type: 'bridge', conf: { bridge, mtu: 10, ipam: hostLocal }, msg: 'invalid mtu 10' },
      { type: 'bridge', conf: { bridge, ipam: { ...hostLocal, ranges: [[{ subnet: '10.211.0.1/24' }]] } }, msg: 'invalid range set 0: network 10.211.0.1/24 has host bits set', ipam: true },
      { type: 'loopback', conf: { args: 'x' }, msg: 'invalid network config at args: expected record, got string' },
      { type: 'portmap', conf: { markMasqBit: 3, externalSetMarkChain: 'KUBE-MARK-MASQ', dataDir }, msg: 'cannot specify externalSetMarkChain and markMasqBit' },
      { type: 'portmap', conf: { conditionsV4: ['-m comment --comment "x"'], dataDir }, msg: 'invalid conditionsV4 entry' },
      { type: 'portmap', conf: { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'icmp' }] }, dataDir }, msg: 'invalid protocol "icmp" in portMappings[0]' },
      { type: 'firewall', conf: { backend: 'firewalld' }, msg: 'the firewalld backend is not supported' },
      { type: 'tuning', conf: { sysctl: { 'kernel.panic': '1' }, dataDir }, msg: 'invalid net sysctl key: "kernel.panic"' },
      { type: 'bandwidth', conf: { ingressRate: 1000 }, msg: 'if ingressRate is set, ingressBurst must also be set' },
      { type: 'vxlan', conf: { network: '10.244.0.0/16', subnet: '10.245.1.0/24', stateDir: dataDir, bridge }, msg: 'subnet 10.245.1.0/24 is not inside network 10.244.0.0/16' },
    ];
  }

  it('each plugin: ADD (code 7, nothing touched) and tscni doctor give the same message', () => {
    const bridge = s.link(s.name('br'));
    const dataDir = s.tmpdir();
    const confDir = s.tmpdir();
    const cacheDir = s.tmpdir();
    const ns = s.netns();
    const rows = badConfigs(bridge, dataDir).map((row, i) => ({ ...row, net: `${s.prefix}v${i}` }));
    const types = new Set(rows.map((r) => r.type));
    expect(types).toEqual(new Set(['loopback', 'bridge', 'portmap', 'firewall', 'tuning', 'bandwidth', 'vxlan'])); // host-local: through bridge

    const refusals = rows.map((row) => {
      const conf = { cniVersion: '1.0.0', name: row.net, type: row.type, ...row.conf };
      writeConflist(confDir, { cniVersion: '1.0.0', name: row.net, plugins: [{ type: row.type, ...row.conf }] });
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${s.prefix}c`, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
      return { row, add: execPlugin(join(OUR_BIN, row.type), env, conf) };
    });

    const doctor = spawnSync(join(OUR_BIN, 'tscni'), ['doctor', '--json', '--conf-dir', confDir, '--cni-path', OUR_BIN, '--cache-dir', cacheDir, '--data-dir', dataDir], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      encoding: 'utf8',
    });
    expect(doctor.status, doctor.stderr).toBe(1);
    const findings: { check: string; severity: string; message: string }[] = JSON.parse(doctor.stdout).findings;

    for (const { row, add } of refusals) {
      const what = `${row.type} ${JSON.stringify(row.conf)}`;
      expect(add.status, what).not.toBe(0);
      expect(add.json, `${what}: ${add.stderr}`).toMatchObject({ code: 7 });
      expect(add.json.msg, what).toContain(row.msg);
      const found = findings.find((f) => f.check === 'config' && f.message.includes(`/${row.net}.conflist:`));
      expect(found?.severity, what).toBe('problem');
      const where = row.ipam ? `plugin 0 (${row.type}) ipam (host-local): ` : `plugin 0 (${row.type}): `;
      expect(found!.message, what).toContain(where + add.json.msg);
    }

    // refused before any side effect: no bridge, nothing in the netns but lo, no file written
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    expect(ipJson(['link', 'show'], ns.name).map((l: { ifname: string }) => l.ifname)).toEqual(['lo']);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
