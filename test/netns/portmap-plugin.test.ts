import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { cnitool, writeConflist } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

const BACKENDS = ['iptables', 'nftables'] as const;

describe('portmap', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** Subnets and host ports no parallel test uses. */
  function numbers() {
    const a = randomInt(1, 250);
    const b = randomInt(1, 250);
    const port = randomInt(20000, 60000);
    return { a, b, tcp: port, udp: port + 1 };
  }

  /** A bridge network (ours) + portmap, a container on it with TCP and UDP echo servers on 8080/8081. */
  function setup(backend: (typeof BACKENDS)[number], n = numbers()) {
    const net = `pm-${s.prefix}`;
    const br = s.link(s.name('b'));
    const confDir = s.tmpdir();
    const conflist = {
      cniVersion: '1.0.0',
      name: net,
      plugins: [
        { type: 'bridge', bridge: br, isGateway: true, hairpinMode: true, ipam: { type: 'host-local', dataDir: s.tmpdir(), ranges: [[{ subnet: `10.${n.a}.${n.b}.0/24` }], [{ subnet: `fd00:${n.a}:${n.b}::/64` }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true }, backend },
      ],
    };
    writeConflist(confDir, conflist);
    const c = s.netns();
    const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), containerId: s.name('c'), capArgs: { portMappings: [{ hostPort: n.tcp, containerPort: 8080, protocol: 'tcp' }, { HostPort: n.udp, ContainerPort: 8081, Protocol: 'udp' }] } };
    s.defer(() => cnitool('del', net, c.path, e));
    for (const argv of [
      ['socat', 'TCP6-LISTEN:8080,ipv6only=0,fork,reuseaddr', 'EXEC:cat'],
      ['socat', 'UDP6-RECVFROM:8081,ipv6only=0,fork,reuseaddr', 'EXEC:cat'],
    ]) {
      const child = spawn('ip', ['netns', 'exec', c.name, ...argv], { stdio: 'ignore' });
      s.defer(() => child.kill());
    }
    return { net, br, c, e, n, conflist };
  }

  /** A namespace "outside", linked to the host by a veth with host-side addresses: a remote client. */
  function outside(n: { a: number; b: number }) {
    const o = s.netns();
    const host = s.link(s.name('o'));
    const v4 = `10.${n.a}.${(n.b + 1) % 250}.1`;
    const v6 = `fd01:${n.a}:${n.b}::1`;
    sh(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', o.name]);
    sh(['ip', 'addr', 'add', `${v4}/30`, 'dev', host]);
    sh(['ip', 'addr', 'add', `${v6}/64`, 'dev', host, 'nodad']);
    sh(['ip', 'link', 'set', host, 'up']);
    sh(['ip', '-n', o.name, 'addr', 'add', `10.${n.a}.${(n.b + 1) % 250}.2/30`, 'dev', 'eth0']);
    sh(['ip', '-n', o.name, 'addr', 'add', `fd01:${n.a}:${n.b}::2/64`, 'dev', 'eth0', 'nodad']);
    sh(['ip', '-n', o.name, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', o.name, 'route', 'add', 'default', 'via', v4]);
    sh(['ip', '-n', o.name, '-6', 'route', 'add', 'default', 'via', v6]);
    return { o, v4, v6 };
  }

  /** Sends a line through `socat` (optionally inside a namespace) and returns what came back. */
  function echo(ns: string | undefined, target: string, text = `hello-${s.prefix}`): string {
    const argv = ['timeout', '3', 'socat', '-T', '1', '-', target];
    for (let i = 0; i < 5; i++) {
      const r = tryRun(ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv, text + '\n');
      if (r.stdout.trim() === text) return r.stdout.trim();
      sh(['sleep', '0.1']);
    }
    return '';
  }

  const natLines = (needles: string[]) =>
    (sh(['iptables-save', '-t', 'nat']) + sh(['ip6tables-save', '-t', 'nat']) + sh(['nft', 'list', 'table', 'inet', 'tscni_portmap']).toString())
      .split('\n')
      .filter((l) => needles.some((x) => l.includes(x)));
  const safeNat = (needles: string[]) => {
    try {
      return natLines(needles);
    } catch {
      return (sh(['iptables-save', '-t', 'nat']) + sh(['ip6tables-save', '-t', 'nat'])).split('\n').filter((l) => needles.some((x) => l.includes(x)));
    }
  };

  for (const backend of BACKENDS) {
    it(`forwards host ports over TCP and UDP, IPv4 and IPv6, from outside, the host and hairpin (${backend})`, () => {
      const n = numbers();
      const { net, c, e, br } = setup(backend, n);
      const { o, v4, v6 } = outside(n);
      const needles = [`:${n.tcp}`, `:${n.udp}`, ` ${n.tcp}`, ` ${n.udp}`, `,${n.udp}`, `,${n.tcp}`, `10.${n.a}.${n.b}.`];
      const before = safeNat(needles);
      const add = cnitool('add', net, c.path, e);
      expect(add.status, add.stderr).toBe(0);
      const gw4 = `10.${n.a}.${n.b}.1`;
      const gw6 = `fd00:${n.a}:${n.b}::1`;
      expect(add.json.ips.map((i: any) => i.gateway)).toEqual([gw4, gw6]);
      expect(sh(['sysctl', '-n', `net.ipv4.conf.${br}.route_localnet`]).trim()).toBe('1');
      const hello = `hello-${s.prefix}`;
      // From another namespace, via the host's address on its link.
      expect(echo(o.name, `TCP:${v4}:${n.tcp}`)).toBe(hello);
      expect(echo(o.name, `UDP:${v4}:${n.udp}`)).toBe(hello);
      expect(echo(o.name, `TCP6:[${v6}]:${n.tcp}`)).toBe(hello);
      expect(echo(o.name, `UDP6:[${v6}]:${n.udp}`)).toBe(hello);
      // From the host: localhost (route_localnet + masquerade) and the bridge gateway.
      expect(echo(undefined, `TCP:127.0.0.1:${n.tcp}`)).toBe(hello);
      expect(echo(undefined, `UDP:127.0.0.1:${n.udp}`)).toBe(hello);
      expect(echo(undefined, `TCP:${gw4}:${n.tcp}`)).toBe(hello);
      expect(echo(undefined, `TCP6:[${gw6}]:${n.tcp}`)).toBe(hello);
      // Hairpin: the container reaches itself through the host port.
      expect(echo(c.name, `TCP:${gw4}:${n.tcp}`)).toBe(hello);
      expect(echo(c.name, `UDP:${gw4}:${n.udp}`)).toBe(hello);
      expect(echo(c.name, `TCP6:[${gw6}]:${n.tcp}`)).toBe(hello);
      expect(cnitool('check', net, c.path, e).status).toBe(0);

      const del = cnitool('del', net, c.path, e);
      expect(del.status, del.stderr).toBe(0);
      expect(safeNat(needles)).toEqual(before);
      expect(echo(o.name, `TCP:${v4}:${n.tcp}`)).toBe('');
    });
  }
});
