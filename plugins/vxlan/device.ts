import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { batchLine } from '../../lib/ip/ip.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import type { Family } from '../../lib/net/ip.ts';
import type { IpRoute } from './reconcile.ts';

/** The node's VXLAN device as it should be. */
export interface DeviceSpec {
  name: string;
  vni: number;
  port: number;
  /** Underlay address and interface: with both set the kernel caps the device MTU correctly. */
  local: string;
  underlay: string;
  mac: string;
  mtu: number;
  /** The VTEP address, `/32` (flannel's layout: the IPv4 subnet's network address), with an IPv4 cluster network. */
  vtep?: string | undefined;
  /** The IPv6 VTEP address, `/128` (the IPv6 subnet's network address), with an IPv6 cluster network. */
  vtep6?: string | undefined;
}

/** The device's VTEP addresses as `ip addr` lines take them; `nodad`: no DAD delay before it can be a source. */
const vtepAddrs = (spec: DeviceSpec) => [
  ...(spec.vtep ? [{ family: 'inet', local: spec.vtep, prefixlen: 32, extra: [] as string[] }] : []),
  ...(spec.vtep6 ? [{ family: 'inet6', local: spec.vtep6, prefixlen: 128, extra: ['nodad'] }] : []),
];

export interface Underlay {
  dev: string;
  ip: string;
  family: Family;
  mtu: number;
}

/** VXLAN over IPv4 adds 50 bytes (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14); IPv6 70. */
export const overhead = (family: Family) => (family === 6 ? 70 : 50);

/** Picks the underlay from observed links and routes: the configured interface or address, else the default route's. */
export function resolveUnderlay(want: { underlay?: string | undefined; localIP?: string | undefined }, links: readonly IpLink[], routes: readonly IpRoute[]): Underlay {
  const global = (l: IpLink) => (l.addr_info ?? []).filter((a) => a.scope === 'global' && !a.tentative && !a.dadfailed);
  let link: IpLink | undefined;
  if (want.underlay) {
    link = links.find((l) => l.ifname === want.underlay);
    if (!link) throw new CniError(ErrorCode.invalidConfig, `underlay interface ${want.underlay} does not exist`);
  } else if (want.localIP) {
    link = links.find((l) => global(l).some((a) => a.local === want.localIP));
    if (!link) throw new CniError(ErrorCode.invalidConfig, `no interface has localIP ${want.localIP}`);
  } else {
    const dev = routes.find((r) => r.dst === 'default')?.dev;
    link = dev === undefined ? undefined : links.find((l) => l.ifname === dev);
    if (!link) throw new CniError(ErrorCode.tryAgainLater, 'no underlay: there is no default route', 'set "underlay" or "localIP" in the config');
  }
  const addrs = global(link);
  const ip = want.localIP ?? (addrs.find((a) => a.family === 'inet') ?? addrs.find((a) => a.family === 'inet6'))?.local;
  if (!ip) throw new CniError(ErrorCode.tryAgainLater, `underlay ${link.ifname} has no global address`);
  if (!addrs.some((a) => a.local === ip)) throw new CniError(ErrorCode.invalidConfig, `localIP ${ip} is not an address of ${link.ifname}`);
  const family = ip.includes(':') ? 6 : 4;
  return { dev: link.ifname, ip, family, mtu: link.mtu };
}

/**
 * Create-or-verify: the lines that make `current` match `spec`. An incompatible VXLAN device (other
 * VNI, port, local address) is re-created; peers' entries stay valid since the MAC is stable.
 */
export function planDevice(spec: DeviceSpec, current: IpLink | undefined): { lines: string[]; recreate?: string } {
  const create = [
    batchLine('link', 'add', spec.name, 'address', spec.mac, 'mtu', spec.mtu, 'type', 'vxlan', 'id', spec.vni, 'local', spec.local, 'dev', spec.underlay, 'dstport', spec.port, 'nolearning'),
    ...vtepAddrs(spec).map((a) => batchLine('addr', 'replace', `${a.local}/${a.prefixlen}`, 'dev', spec.name, ...a.extra)),
    batchLine('link', 'set', spec.name, 'up'),
  ];
  if (!current) return { lines: create };
  const kind = current.linkinfo?.info_kind;
  if (kind !== 'vxlan') throw new CniError(ErrorCode.internal, `${spec.name} exists and is not a vxlan device`, `kind: ${kind ?? 'unknown'}`);
  const data = (current.linkinfo?.info_data ?? {}) as { id?: number; port?: number; local?: string; local6?: string; link?: string; learning?: boolean };
  const mismatch = [
    data.id !== spec.vni && `vni: ${data.id} vs ${spec.vni}`,
    data.port !== spec.port && `port: ${data.port} vs ${spec.port}`,
    (data.local ?? data.local6) !== spec.local && `local: ${data.local ?? data.local6} vs ${spec.local}`,
    data.link !== spec.underlay && `dev: ${data.link} vs ${spec.underlay}`,
    data.learning !== false && 'learning: on vs off',
  ].filter((m): m is string => typeof m === 'string');
  if (mismatch.length > 0) return { lines: [batchLine('link', 'del', spec.name), ...create], recreate: mismatch.join(', ') };
  const lines: string[] = [];
  if (current.address !== spec.mac) lines.push(batchLine('link', 'set', spec.name, 'address', spec.mac));
  if (current.mtu !== spec.mtu) lines.push(batchLine('link', 'set', spec.name, 'mtu', spec.mtu));
  const want = vtepAddrs(spec);
  // the kernel's own link-local IPv6 address stays
  const held = (current.addr_info ?? []).filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope !== 'link'));
  for (const a of held) if (!want.some((w) => w.local === a.local && w.prefixlen === a.prefixlen)) lines.push(batchLine('addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', spec.name));
  for (const w of want) if (!held.some((a) => a.local === w.local && a.prefixlen === w.prefixlen)) lines.push(batchLine('addr', 'replace', `${w.local}/${w.prefixlen}`, 'dev', spec.name, ...w.extra));
  if (!current.flags.includes('UP')) lines.push(batchLine('link', 'set', spec.name, 'up'));
  return { lines };
}
