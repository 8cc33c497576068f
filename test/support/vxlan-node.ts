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
