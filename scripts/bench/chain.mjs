// The containerd default pod network through cnitool (a real libcni client): the loopback network,
// then a bridge + host-local + portmap conflist; a pod's add is both adds, its del both dels in
// reverse, as containerd's CRI does. With and without one port mapping. Ours vs the reference.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, ROOT } from './lib.mjs';

const cnitoolPath = () => execFileSync('bash', [join(ROOT, 'scripts', 'cnitool.sh')], { encoding: 'utf8', env: childEnv({ CNITOOL: process.env.CNITOOL }) }).trim();

/** containerd's 10-containerd-net.conflist, on a bridge and subnet of our own. */
function writeConfs(dir, tag, subnet) {
  const bridge = `bc${process.pid % 10000}${tag}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '99-loopback.conf'), JSON.stringify({ cniVersion: '1.0.0', name: `bench-lo-${tag}`, type: 'loopback' }));
  writeFileSync(
    join(dir, '10-containerd-net.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: `bench-pod-${tag}`,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipMasq: true, promiscMode: true, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
  return { bridge, lo: `bench-lo-${tag}`, pod: `bench-pod-${tag}` };
}

export default {
  id: 'chain',
  title: 'containerd default chain through cnitool (loopback + bridge/host-local/portmap)',
  notes:
    'One pod = `cnitool add` of the loopback network (CNI_IFNAME=lo) then of the bridge + host-local + portmap conflist (eth0, isGateway, ipMasq, promiscMode: containerd\'s default); ' +
    'del is the same two in reverse. Each row times the pair end to end, including cnitool\'s own start (~2 ms, Go, the same for both sides). ' +
    '"1 port" passes CAP_ARGS portMappings [8080→80/tcp]. The reference side runs /usr/lib/cni (its portmap uses iptables).',
  run(ctx) {
    const cnitool = cnitoolPath();
    const base = mkdtempSync(join(tmpdir(), 'bench-chain-'));
    const bridges = [];
    const teardowns = [];
    try {
      const side = (dir, tag, subnet) => {
        const confDir = join(base, tag);
        const names = writeConfs(confDir, tag, subnet);
        bridges.push(names.bridge);
        const ns = ctx.netns();
        const env = (ifname, capArgs) => ({ NETCONFPATH: confDir, CNI_PATH: dir, CNI_CACHEDIR: join(confDir, 'cache'), CNI_IFNAME: ifname, CNI_CONTAINERID: `${ctx.containerId(tag)}`, ...(capArgs ? { CAP_ARGS: capArgs } : {}) });
        const call = (verb, net, ifname, capArgs) => ctx.timeSpawn(cnitool, { args: [verb, net, ns.path], env: env(ifname, capArgs) });
        // If a run stops half-way (an ADD or DEL failed), DEL once more so no rule or reservation stays.
        teardowns.push(() => {
          for (const [net, ifname] of [[names.pod, 'eth0'], [names.lo, 'lo']]) spawnSync(cnitool, ['del', net, ns.path], { env: childEnv(env(ifname)), stdio: 'ignore' });
        });
        const pod = (capArgs) =>
          ctx.sample(() => ({
            add: call('add', names.lo, 'lo') + call('add', names.pod, 'eth0', capArgs),
            del: call('del', names.pod, 'eth0', capArgs) + call('del', names.lo, 'lo'),
          }));
        const ports = JSON.stringify({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
        return { plain: pod(undefined), port: pod(ports) };
      };
      const ours = side(ctx.oursDir, 'o', '10.253.1.0/24');
      const ref = side(ctx.refDir, 'r', '10.253.2.0/24');
      return [
        ctx.compare('pod add (lo + bridge/host-local/portmap)', ours.plain.add, ref.plain.add),
        ctx.compare('pod del', ours.plain.del, ref.plain.del),
        ctx.compare('pod add, 1 port mapping', ours.port.add, ref.port.add),
        ctx.compare('pod del, 1 port mapping', ours.port.del, ref.port.del),
      ];
    } finally {
      for (const teardown of teardowns) teardown();
      for (const b of bridges) spawnSync('ip', ['link', 'del', b]);
      rmSync(base, { recursive: true, force: true });
    }
  },
};
