import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { cnitool, writeConflist } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/**
 * The chains runtimes write, through the real libcni client: podman's bridge → portmap → firewall →
 * tuning (+ bandwidth), with CRI's capitalized runtimeConfig keys and podman's camelCase ones.
 */
describe('chained plugins through cnitool', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  const capArgs = {
    cri: (port: number) => ({
      portMappings: [{ HostPort: port, ContainerPort: 8080, Protocol: 'tcp', HostIP: '' }],
      bandwidth: { IngressRate: 100_000_000, IngressBurst: 4294967295, EgressRate: 100_000_000, EgressBurst: 4294967295 },
    }),
    podman: (port: number) => ({
      portMappings: [{ hostPort: port, containerPort: 8080, protocol: 'tcp' }],
      bandwidth: { ingressRate: 100_000_000, ingressBurst: 800_000, egressRate: 100_000_000, egressBurst: 800_000 },
    }),
  };

  for (const keys of ['cri', 'podman'] as const) {
    for (const cniVersion of ['0.4.0', '1.0.0']) {
      it(`bridge + portmap + firewall + tuning + bandwidth with ${keys} keys at ${cniVersion}`, () => {
        const [a, b, port] = [randomInt(1, 250), randomInt(1, 250), randomInt(20000, 60000)];
        const net = `ch-${s.prefix}`;
        const br = s.link(s.name('b'));
        const confDir = s.tmpdir();
        writeConflist(confDir, {
          cniVersion,
          name: net,
          plugins: [
            { type: 'bridge', bridge: br, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', dataDir: s.tmpdir(), routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: `10.${a}.${b}.0/24`, gateway: `10.${a}.${b}.1` }]] } },
            { type: 'portmap', capabilities: { portMappings: true } },
            { type: 'firewall', backend: 'iptables' },
            { type: 'tuning', dataDir: s.tmpdir(), mtu: 1400, sysctl: { 'net.ipv4.conf.IFNAME.accept_local': '1', 'net.core.somaxconn': '777' } },
            { type: 'bandwidth', capabilities: { bandwidth: true } },
          ],
        });
        const c = s.netns();
        const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), containerId: s.name('c'), capArgs: capArgs[keys](port), args: 'IgnoreUnknown=1;K8S_POD_NAME=p' };
        s.defer(() => cnitool('del', net, c.path, e));
        const ip = `10.${a}.${b}.2`;
        const mention = () =>
          (sh(['iptables-save']) + sh(['ip6tables-save'])).split('\n').filter((l) => l.includes(`10.${a}.${b}.`) || l.includes(`${port}`) || l.includes(net) || l.includes(e.containerId)).sort();
        const links = () => ipJson<any[]>(['link', 'show']).map((l) => l.ifname as string);
        const before = mention();

        const add = cnitool('add', net, c.path, e);
        expect(add.status, add.stderr).toBe(0);
        expect(add.json.cniVersion).toBe(cniVersion);
        expect(add.json.ips[0].address).toBe(`${ip}/24`);
        const ifb = add.json.interfaces.find((i: any) => i.name.startsWith('bwp'));
        expect(ifb).toBeDefined();
        const hostVeth = add.json.interfaces[1].name;
        expect(links()).toEqual(expect.arrayContaining([hostVeth, ifb.name]));
        // tuning: visible in the namespace.
        expect(ipJson<any[]>(['link', 'show', 'eth0'], c.name)[0].mtu).toBe(1400);
        expect(sh(['ip', 'netns', 'exec', c.name, 'sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('777');
        expect(sh(['ip', 'netns', 'exec', c.name, 'sysctl', '-n', 'net.ipv4.conf.eth0.accept_local']).trim()).toBe('1');
        // firewall + portmap rules, bandwidth qdiscs.
        expect(mention().some((l) => l.startsWith(`-A CNI-FORWARD -s ${ip}/32`))).toBe(true);
        expect(mention().some((l) => l.includes(`--to-destination ${ip}:8080`))).toBe(true);
        expect(JSON.parse(sh(['tc', '-json', 'qdisc', 'show', 'dev', ifb.name]))[0].kind).toBe('tbf');
        // The host port works end to end: host → gateway:port → container echo server.
        const server = spawn('ip', ['netns', 'exec', c.name, 'socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'EXEC:cat'], { stdio: 'ignore' });
        s.defer(() => server.kill());
        let got = '';
        for (let i = 0; i < 10 && got !== 'ping'; i++) got = tryRun(['timeout', '3', 'socat', '-T', '1', '-', `TCP:10.${a}.${b}.1:${port}`], 'ping\n').stdout.trim();
        expect(got).toBe('ping');
        expect(cnitool('check', net, c.path, e).status).toBe(0);

        const del = cnitool('del', net, c.path, e);
        expect(del.status, del.stderr).toBe(0);
        expect(mention()).toEqual(before);
        // The bridge stays (as the reference); the host veth and the ifb are gone.
        expect(links().filter((l) => l === hostVeth || l === ifb.name)).toEqual([]);
        expect(cnitool('del', net, c.path, e).status).toBe(0);
      });
    }
  }
});
