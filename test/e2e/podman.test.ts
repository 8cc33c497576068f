import { afterAll, describe, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipJson } from '../support/kernel.ts';
import { Scope } from '../support/scope.ts';
import { Checks } from './support/checks.ts';
import { bridgePorts, existingChains, firewallLines, freeHostPort, freeSubnet, HostLeftovers, httpGet, ncGet, ownPatterns, perContainerChains, reservations } from './support/host.ts';
import { buildImage } from './support/image.ts';
import { Podman } from './support/podman.ts';
import { PluginDir } from './support/plugins.ts';

// podman 4.3's CNI backend generates bridge + portmap + firewall + tuning for `podman network create`.
const NEEDS = ['bridge', 'host-local', 'portmap', 'firewall', 'tuning'];
const IMAGE = 'localhost/tscni-e2e:latest';

describe('podman (CNI backend)', () => {
  const checks = new Checks('podman', NEEDS);
  const s = new Scope();
  const net = `${s.prefix}net`;
  const bridge = s.link(`${s.prefix}br0`);
  const { subnet, prefix, gateway } = freeSubnet();
  const hostPort = freeHostPort();
  const token = `tscni-${s.prefix}`;
  const leftovers = new HostLeftovers(['/var/lib/cni', '/var/lib/containers', '/run/runc'], ['libpod_parent']);
  let podman: Podman;
  let dataDir: string;
  const ids: Record<'web' | 'peer', string> = { web: '', peer: '' };
  const ips: Record<'web' | 'peer', string> = { web: '', peer: '' };
  const patterns = () => ownPatterns(net, prefix, bridge, Object.values(ids));
  let chainsWhileUp: string[] = [];

  checks.setup(() => {
    const dir = s.tmpdir();
    const image = buildImage(join(dir, 'image'));
    checks.plugins = PluginDir.create(join(dir, 'plugins'), join(dir, 'calls'), [...NEEDS, 'loopback']);
    podman = new Podman(dir, checks.plugins.dir);
    s.defer(() => podman.teardown(net));
    podman.run(['import', '--quiet', image.rootfsTar, IMAGE]);
    // podman walks the host's links to find a free subnet; a link deleted meanwhile (other tests) fails it
    for (let i = 0; podman.run(['network', 'create', '--subnet', subnet, net], { allowFailure: i < 4 }).status !== 0; i++);
    // The generated conflist, as a user would keep it, with our bridge name and a private IPAM store.
    const file = join(podman.confDir, `${net}.conflist`);
    const conflist = JSON.parse(readFileSync(file, 'utf8'));
    expect(conflist.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    dataDir = join(dir, 'ipam');
    conflist.plugins[0].bridge = bridge;
    conflist.plugins[0].ipam.dataDir = dataDir;
    writeFileSync(file, JSON.stringify(conflist, null, 2));
  });

  afterAll(() => {
    s.dispose();
    leftovers.remove(patterns());
  });

  const inspect = (name: string, format: string) => podman.run(['inspect', '--format', format, name]).stdout.trim();

  checks.check('two containers start on a tscni bridge network, one with -p', () => {
    const web = `mkdir -p /www && echo ${token} > /www/index.html && exec httpd -f -p 8080 -h /www`;
    ids.web = podman.run(['run', '-d', '--name', `${s.prefix}web`, '--network', net, '-p', `${hostPort}:8080`, IMAGE, 'sh', '-c', web]).stdout.trim();
    ids.peer = podman.run(['run', '-d', '--name', `${s.prefix}peer`, '--network', net, IMAGE, 'sleep', '600']).stdout.trim();
    ips.web = inspect(ids.web, `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    ips.peer = inspect(ids.peer, `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    expect(ips.web).toMatch(new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.\\d+$`));
    expect(ips.peer).toMatch(new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.\\d+$`));
    expect(ips.web).not.toBe(ips.peer);
    expect(bridgePorts(bridge)).toHaveLength(2);
    const addrs = ipJson<any[]>(['addr', 'show', 'dev', bridge])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toContain(`${gateway}/24`);
    expect(reservations(dataDir).sort()).toEqual([ips.web, ips.peer].map((ip) => join(net, ip)).sort());
  });

  checks.check('the containers ping each other', () => {
    expect(podman.run(['exec', ids.peer, 'ping', '-c', '1', '-W', '2', ips.web], { allowFailure: true }).status).toBe(0);
    expect(podman.run(['exec', ids.web, 'ping', '-c', '1', '-W', '2', ips.peer], { allowFailure: true }).status).toBe(0);
  });

  checks.check('-p port mapping is reached from the host', async () => {
    expect(await httpGet(gateway, hostPort)).toContain(token);
  });

  checks.check('-p port mapping is reached by hairpin (the container itself) and from the other container', () => {
    expect(podman.run(['exec', ids.web, 'sh', '-c', ncGet(gateway, hostPort)], { allowFailure: true }).stdout).toContain(token);
    expect(podman.run(['exec', ids.peer, 'sh', '-c', ncGet(gateway, hostPort)], { allowFailure: true }).stdout).toContain(token);
  });

  checks.check('podman stop releases everything: IPs, veths, rules, chains', () => {
    const whileUp = firewallLines(patterns());
    expect(whileUp.some((l) => l.includes(ips.web)), 'portmap/firewall rules for the web container while it runs').toBe(true);
    chainsWhileUp = perContainerChains(whileUp);
    podman.run(['stop', '--time', '0', ids.web, ids.peer]);
    const dels = checks.plugins!.calls().filter((c) => c.env.CNI_COMMAND === 'DEL');
    expect(dels.length).toBeGreaterThan(0);
    expect(dels.filter((c) => c.exit !== 0)).toEqual([]);
    expect(reservations(dataDir)).toEqual([]);
    expect(bridgePorts(bridge)).toEqual([]);
    expect(firewallLines(patterns())).toEqual([]);
    expect(existingChains(chainsWhileUp)).toEqual([]);
  });

  checks.check('podman rm and network rm leave nothing behind', () => {
    podman.run(['rm', ids.web, ids.peer]);
    podman.run(['network', 'rm', net]);
    expect(ipJson(['link', 'show']).map((l: any) => l.ifname)).not.toContain(bridge);
    expect(firewallLines(patterns())).toEqual([]);
    expect(existingChains(chainsWhileUp)).toEqual([]);
    const cached = existsSync('/var/lib/cni/results') ? readdirSync('/var/lib/cni/results') : [];
    expect(cached.filter((f) => f.includes(net))).toEqual([]);
  });
});
