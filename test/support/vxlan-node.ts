import { EtcdServer } from './etcd-server.ts';
import { sh, type Scope } from './scope.ts';

/**
 * A simulated node with nobody else on its underlay: a namespace whose eth0 (one end of a veth pair)
 * has 192.168.100.1/24 and a default route, enough for the vxlan plugin to pick its underlay;
 * nothing is ever sent. Returns the namespace's name.
 */
export function loneNode(s: Scope, tag: string): string {
  const ns = s.netns(tag).name;
  sh(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  sh(['ip', '-n', ns, 'addr', 'add', '192.168.100.1/24', 'dev', 'eth0']);
  sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', ns, 'link', 'set', 'eth0p', 'up']);
  sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', '192.168.100.254']);
  return ns;
}

/** A shared underlay: a namespace with bridge `br0` (192.168.100.254/24, the nodes' default gateway) that nodes join; nothing else is on it. */
export function underlay(s: Scope): string {
  const ns = s.netns('u').name;
  sh(['ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  sh(['ip', '-n', ns, 'addr', 'add', '192.168.100.254/24', 'dev', 'br0']);
  sh(['ip', '-n', ns, 'link', 'set', 'br0', 'up']);
  return ns;
}

export const underlayIp = (i: number) => `192.168.100.${i}`;
export const underlayIp6 = (i: number) => `fd00:100::${i}`;
/** The IPv6 gateway of an underlay that has one (the caller adds it to br0). */
export const UNDERLAY_GW6 = 'fd00:100::fe';

/**
 * Node `i` on that underlay: a namespace whose eth0 has underlayIp(i)/24 and a default route, or
 * with `family` 6 only underlayIp6(i)/64 and an IPv6 default route via UNDERLAY_GW6.
 */
export function underlayNode(s: Scope, underlayNs: string, i: number, family: 4 | 6 = 4): string {
  const ns = s.netns('k').name;
  sh(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', underlayNs]);
  if (family === 4) sh(['ip', '-n', ns, 'addr', 'add', `${underlayIp(i)}/24`, 'dev', 'eth0']);
  else sh(['ip', '-n', ns, 'addr', 'add', `${underlayIp6(i)}/64`, 'dev', 'eth0', 'nodad']);
  sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  if (family === 4) sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', '192.168.100.254']);
  else sh(['ip', '-n', ns, '-6', 'route', 'add', 'default', 'via', UNDERLAY_GW6]);
  sh(['ip', '-n', underlayNs, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
  return ns;
}

/** etcd on that underlay, in a namespace of its own at underlayIp(250); started by the caller. */
export function underlayEtcd(s: Scope, underlayNs: string): EtcdServer {
  return new EtcdServer(s, underlayNode(s, underlayNs, 250), underlayIp(250));
}

/** The device every vxlan test node uses (the plugin's default for VNI 1). */
export const DEVICE = 'tscni.1';

/** Peer `n` of a generated cluster: subnet 10.(1 + n/256).(n%256).0/24 at underlay 172.16.(n/128).(n%128 + 1). */
export const peer = (n: number, ip = `172.16.${n >> 7}.${(n & 127) + 1}`, mac?: string) => ({ subnet: `10.${1 + (n >> 8)}.${n & 255}.0/24`, ip, ...(mac ? { mac } : {}) });

/** The device's routes, neighbours and FDB entries in namespace `ns`, as `ip -json` / `bridge -json` print them, in a stable order. */
export function kernelState(ns: string) {
  const json = (argv: string[]) => JSON.parse(sh(['ip', 'netns', 'exec', ns, ...argv]) || '[]') as Record<string, unknown>[];
  const sorted = (xs: Record<string, unknown>[]) => xs.map((x) => JSON.stringify(x)).sort();
  return {
    routes: sorted(json(['ip', '-json', 'route', 'show', 'dev', DEVICE])),
    neighs: sorted(json(['ip', '-json', 'neigh', 'show', 'dev', DEVICE])),
    fdb: sorted(json(['bridge', '-json', 'fdb', 'show', 'dev', DEVICE])),
  };
}
