import { afterAll, describe, expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeConflist } from '../support/cni.ts';
import { Scope, tryRun } from '../support/scope.ts';
import { Checks } from './support/checks.ts';
import { Containerd } from './support/containerd.ts';
import { CriClient } from './support/cri.ts';
import { bridgePorts, existingChains, firewallLines, freeHostPort, freeSubnet, HostLeftovers, httpGet, ncGet, ownPatterns, perContainerChains, reservations } from './support/host.ts';
import { buildImage, IMAGE_REF } from './support/image.ts';
import { missingPlugins, PLUGIN_DIR, PluginDir } from './support/plugins.ts';

// containerd's CRI runs loopback itself (CNI_IFNAME=lo, 0.3.1) before the first conflist in conf_dir.
const NEEDS = ['bridge', 'host-local', 'loopback'];
// Without portmap the conflist is bridge alone (a valid Kubernetes network) and only the hostPort check is skipped.
const NO_PORTMAP = missingPlugins(['portmap']).length ? `${PLUGIN_DIR} has no portmap` : undefined;
const NS = 'k8s.io';

interface Pod {
  name: string;
  id: string;
  ip: string;
  pid: string;
  netns: string;
}

describe('containerd 1.6 CRI plugin (the kubelet path)', () => {
  const checks = new Checks('cri', NEEDS);
  const s = new Scope();
  const net = `${s.prefix}k8s`;
  const bridge = s.link(`${s.prefix}br0`);
  const { subnet, prefix, gateway } = freeSubnet();
  const hostPort = freeHostPort();
  const token = `tscni-${s.prefix}`;
  const dns = { servers: ['10.96.0.10'], searches: [`${s.prefix}.svc.cluster.local`], options: ['ndots:5'] };
  const leftovers = new HostLeftovers(['/run/containerd', '/var/lib/cni'], [NS]);
  let containerd: Containerd;
  let cri: CriClient;
  let dataDir: string;
  let wwwDir: string;
  const pods: Pod[] = [];
  let chainsWhileUp: string[] = [];
  const patterns = () => ownPatterns(net, prefix, bridge, pods.map((p) => p.id));
  const calls = (plugin: string, command: string, id: string) => checks.plugins!.calls().filter((c) => c.plugin === plugin && c.env.CNI_COMMAND === command && c.env.CNI_CONTAINERID === id);

  checks.setup(async () => {
    const dir = s.tmpdir();
    const image = buildImage(join(dir, 'image'));
    checks.plugins = PluginDir.create(join(dir, 'plugins'), join(dir, 'calls'), [...NEEDS, 'portmap']);
    const confDir = join(dir, 'net.d');
    dataDir = join(dir, 'ipam');
    wwwDir = join(dir, 'www');
    mkdirSync(wwwDir);
    writeFileSync(join(wwwDir, 'index.html'), token + '\n');
    writeConflist(confDir, {
      cniVersion: '1.0.0',
      name: net,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
        ...(NO_PORTMAP ? [] : [{ type: 'portmap', capabilities: { portMappings: true } }]),
      ],
    });
    containerd = new Containerd(join(dir, 'containerd'), { pluginDir: checks.plugins.dir, confDir, sandboxImage: IMAGE_REF });
    s.defer(() => tryRun(['ip', 'link', 'del', bridge]));
    await containerd.start();
    containerd.ctr(NS, ['image', 'import', '--snapshotter', 'native', image.ociTar]);
    cri = new CriClient(containerd.socket);
    expect((await cri.version()).runtimeName).toBe('containerd');
  });

  afterAll(async () => {
    for (const pod of pods) {
      await cri.stopPodSandbox(pod.id).catch(() => undefined);
      await cri.removePodSandbox(pod.id).catch(() => undefined);
    }
    cri?.close();
    containerd?.clean(NS);
    await containerd?.stop();
    s.dispose();
    leftovers.remove(patterns());
  });

  const runPod = async (name: string, extra: object): Promise<Pod> => {
    const id = await cri.runPodSandbox({ metadata: { name, uid: `${name}-uid`, namespace: 'e2e' }, hostname: name, ...extra });
    const { status, info } = await cri.podSandboxStatus(id);
    const netns = info.runtimeSpec?.linux?.namespaces?.find((n: { type: string }) => n.type === 'network')?.path ?? '';
    const pod = { name, id, ip: status.network?.ip ?? '', pid: String(info.pid ?? ''), netns };
    pods.push(pod);
    return pod;
  };
  /** argv that runs in a pod's network namespace (the host's tools; the pod has only a sleeping pause process). */
  const inPod = (pod: Pod, argv: string[]) => ['nsenter', `--net=${pod.netns}`, ...argv];

  checks.check('RunPodSandbox x2: both pods get an address from the bridge network (loopback first, K8S_* args)', async () => {
    await runPod(`${s.prefix}-a`, { dnsConfig: dns, portMappings: [{ protocol: 'TCP', containerPort: 8080, hostPort }] });
    await runPod(`${s.prefix}-b`, {});
    for (const pod of pods) {
      expect(pod.ip.startsWith(prefix + '.'), `${pod.name} ip ${pod.ip}`).toBe(true);
      expect(existsSync(pod.netns), pod.netns).toBe(true);
      const lo = calls('loopback', 'ADD', pod.id);
      expect(lo.map((c) => [c.env.CNI_IFNAME, c.exit])).toEqual([['lo', 0]]);
      const add = calls('bridge', 'ADD', pod.id);
      expect(add).toHaveLength(1);
      expect(add[0]!.env.CNI_ARGS).toContain(`K8S_POD_NAME=${pod.name}`);
      expect(add[0]!.env.CNI_NETNS).toBe(pod.netns);
    }
    expect(pods[0]!.ip).not.toBe(pods[1]!.ip);
    expect(reservations(dataDir).sort()).toEqual(pods.map((p) => join(net, p.ip)).sort());
    expect(bridgePorts(bridge)).toHaveLength(2);
    if (NO_PORTMAP) return;
    const portmap = calls('portmap', 'ADD', pods[0]!.id)[0];
    // containerd sends Go's field names, capitalized (the spec's keys are camelCase; libcni matches either)
    expect(portmap?.conf.runtimeConfig.portMappings).toEqual([{ HostPort: hostPort, ContainerPort: 8080, Protocol: 'tcp', HostIP: '' }]);
  });

  checks.check('pod-to-pod traffic', () => {
    const [a, b] = pods as [Pod, Pod];
    expect(tryRun(inPod(a, ['ping', '-c', '1', '-W', '2', b.ip])).status).toBe(0);
    expect(tryRun(inPod(b, ['ping', '-c', '1', '-W', '2', a.ip])).status).toBe(0);
  });

  checks.check('hostPort via portMappings: reached from the host, by hairpin and from the other pod', async () => {
    const [a, b] = pods as [Pod, Pod];
    const server: ChildProcess = spawn('nsenter', [`--net=${a.netns}`, 'busybox', 'httpd', '-f', '-p', '8080', '-h', wwwDir], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !(await httpGet(a.ip, 8080)).includes(token); i++) await sleep(100);
      expect(await httpGet(gateway, hostPort)).toContain(token);
      for (const [pod, how] of [[a, 'hairpin'], [b, 'from the other pod']] as const) {
        const got = tryRun(inPod(pod, ['sh', '-c', ncGet(gateway, hostPort)]));
        expect(got.stdout, `${how}: ${got.stderr}`).toContain(token);
      }
    } finally {
      server.kill('SIGKILL');
      await new Promise((resolve) => (server.exitCode !== null ? resolve(null) : server.once('exit', resolve)));
    }
  }, NO_PORTMAP);

  checks.check('DNS config: the pod gets the servers, searches and options it asked for', () => {
    const root = join(containerd.dir, 'root', 'io.containerd.grpc.v1.cri', 'sandboxes', pods[0]!.id, 'resolv.conf');
    const resolv = readFileSync(root, 'utf8');
    expect(resolv).toContain(`nameserver ${dns.servers[0]}`);
    expect(resolv).toContain(`search ${dns.searches[0]}`);
    expect(resolv).toContain(`options ${dns.options[0]}`);
  });

  checks.check('StopPodSandbox: DEL with the netns releases IPs, veths and rules', async () => {
    const whileUp = firewallLines(patterns());
    expect(whileUp.some((l) => l.includes(pods[0]!.ip)), 'ipMasq/portmap rules for pod a while it runs').toBe(true);
    chainsWhileUp = perContainerChains(whileUp);
    for (const pod of pods) await cri.stopPodSandbox(pod.id);
    for (const pod of pods) {
      const dels = calls('bridge', 'DEL', pod.id);
      expect(dels.map((c) => [c.env.CNI_NETNS, c.exit])).toEqual([[pod.netns, 0]]);
    }
    expect(reservations(dataDir)).toEqual([]);
    expect(bridgePorts(bridge)).toEqual([]);
    expect(firewallLines(patterns())).toEqual([]);
    expect(existingChains(chainsWhileUp)).toEqual([]);
  });

  checks.check('RemovePodSandbox: the second DEL, with an empty netns, succeeds; nothing is left', async () => {
    for (const pod of pods) await cri.removePodSandbox(pod.id);
    for (const pod of pods) {
      const dels = calls('bridge', 'DEL', pod.id);
      expect(dels.map((c) => [c.env.CNI_NETNS ?? '', c.exit])).toEqual([
        [pod.netns, 0],
        ['', 0],
      ]);
      expect(existsSync(pod.netns)).toBe(false);
      expect(calls('portmap', 'DEL', pod.id).every((c) => c.exit === 0)).toBe(true);
    }
    expect(reservations(dataDir)).toEqual([]);
    expect(firewallLines(patterns())).toEqual([]);
    expect(existingChains(chainsWhileUp)).toEqual([]);
    expect(bridgePorts(bridge)).toEqual([]);
  });
});
