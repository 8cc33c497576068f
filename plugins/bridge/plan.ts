import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { IPConfig, Result, Route } from '../../lib/cni/result.ts';
import { batchLine } from '../../lib/ip/ip.ts';
import type { Sysctl } from '../../lib/ip/sysctl.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import { contains, formatCidr, formatIp, network, nextIp, parseCidr, parseIp, type Cidr, type Family, type Ip } from '../../lib/net/ip.ts';
import type { Bridge } from './conf.ts';

/** The container's index in the result's interfaces: [bridge, host veth, container]. */
export const CONTAINER_INDEX = 2;

const badIpam = (msg: string, details?: string) => new CniError(ErrorCode.internal, msg, details);

function cidrOf(text: string, what: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw badIpam(`IPAM returned an invalid ${what} ${JSON.stringify(text)}`);
  return c;
}

function ipOf(text: string, what: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw badIpam(`IPAM returned an invalid ${what} ${JSON.stringify(text)}`);
  return ip;
}

/** Addressing for the container after gateway defaults, as the reference computes it. */
export interface Addressing {
  ips: IPConfig[];
  routes: Route[];
  /** Gateway prefixes to put on the bridge, in order (empty unless isGateway). */
  gateways: Cidr[];
}

/**
 * IPs point at the container interface; a missing gateway is the subnet's first address when the
 * bridge is a gateway; isDefaultGateway adds a default route per family unless one with a gateway exists.
 */
export function planAddressing(br: Bridge, ipam: Result): Addressing {
  const ips: IPConfig[] = [];
  const routes = [...(ipam.routes ?? [])];
  const gateways: Cidr[] = [];
  const defaultFound = new Set<Family>();
  for (const ipc of ipam.ips ?? []) {
    const addr = cidrOf(ipc.address, 'address');
    const family = addr.ip.family;
    let gateway = ipc.gateway;
    if (gateway === undefined && br.isGateway) gateway = formatIp(nextIp(network(addr))!);
    if (gateway !== undefined) ipOf(gateway, 'gateway');
    ips.push({ ...ipc, interface: CONTAINER_INDEX, ...(gateway !== undefined ? { gateway } : {}) });
    if (br.isDefaultGateway && !defaultFound.has(family)) {
      const zero = family === 4 ? '0.0.0.0/0' : '::/0';
      if (!routes.some((r) => r.gw !== undefined && parseCidr(r.dst)?.prefix === 0 && parseCidr(r.dst)?.ip.family === family)) {
        routes.push({ dst: zero, ...(gateway !== undefined ? { gw: gateway } : {}) });
      }
      defaultFound.add(family);
    }
    if (br.isGateway && gateway !== undefined) gateways.push({ ip: parseIp(gateway)!, prefix: addr.prefix });
  }
  return { ips, routes, gateways };
}

const sameAddr = (a: Cidr, b: Cidr) => a.prefix === b.prefix && a.ip.family === b.ip.family && a.ip.value === b.ip.value;
const brdFor = (c: Cidr) => (c.ip.family === 4 && c.prefix < 31 ? ['brd', '+'] : []);

/** What the host batch needs to know beyond the config. */
export interface HostInputs {
  /** The bridge as observed (undefined: we create it). */
  observed: IpLink | undefined;
  hostVeth: string;
  ifname: string;
  netns: string;
  /** MAC for a bridge we create: an explicit MAC keeps it from following its ports'. */
  bridgeMac: string;
  gateways: readonly Cidr[];
}

/**
 * The host side in one ip batch (pure): create or reuse the bridge, the veth pair with its peer made
 * directly in the container's namespace, the port settings and the gateway addresses. Ends with two
 * show lines whose JSON gives the MACs for the result.
 */
export function planHost(br: Bridge, inp: HostInputs): string[] {
  const { observed } = inp;
  const lines: string[] = [];
  const mtu = br.mtu ? ['mtu', br.mtu] : [];
  if (!observed) {
    const vlanFiltering = br.vlan > 0 || br.vlanTrunk.length > 0 ? ['vlan_filtering', 1] : [];
    lines.push(batchLine('link', 'add', br.bridge, 'address', inp.bridgeMac, ...mtu, 'type', 'bridge', ...vlanFiltering));
  } else if (observed.linkinfo?.info_kind !== 'bridge') {
    throw new CniError(ErrorCode.internal, `failed to create bridge "${br.bridge}": "${br.bridge}" already exists but is not a bridge`);
  }
  if (br.promiscMode) lines.push(batchLine('link', 'set', br.bridge, 'promisc', 'on'));
  lines.push(batchLine('link', 'set', br.bridge, 'up'));
  const mac = br.mac ? ['address', br.mac] : [];
  lines.push(batchLine('link', 'add', inp.hostVeth, ...mtu, 'txqueuelen', 0, 'type', 'veth', 'peer', 'name', inp.ifname, ...mtu, 'txqueuelen', 0, ...mac, 'netns', inp.netns));
  lines.push(batchLine('link', 'set', inp.hostVeth, 'master', br.bridge, 'up'));
  const port = [...(br.hairpinMode ? ['hairpin', 'on'] : []), ...(br.portIsolation ? ['isolated', 'on'] : [])];
  if (port.length) lines.push(batchLine('link', 'set', 'dev', inp.hostVeth, 'type', 'bridge_slave', ...port));
  lines.push(...planGatewayAddrs(br, observed, inp.gateways));
  lines.push(batchLine('link', 'show', 'dev', inp.hostVeth), batchLine('link', 'show', 'dev', br.bridge));
  return lines;
}

/** ensureAddr of the reference: keep an equal address; another one in the way is an error, or removed with forceAddress. */
function planGatewayAddrs(br: Bridge, observed: IpLink | undefined, gateways: readonly Cidr[]): string[] {
  const present: Cidr[] = (observed?.addr_info ?? []).flatMap((a) => {
    const c = parseCidr(`${a.local}/${a.prefixlen}`);
    return c ? [c] : [];
  });
  const lines: string[] = [];
  for (const gw of gateways) {
    if (present.some((p) => sameAddr(p, gw))) continue;
    for (const p of [...present]) {
      if (p.ip.family !== gw.ip.family) continue;
      const conflicts = gw.ip.family === 4 || contains(p, gw.ip) || contains(gw, p.ip);
      if (!conflicts) continue;
      if (!br.forceAddress) {
        throw new CniError(ErrorCode.internal, `failed to set bridge addr: "${br.bridge}" already has an IP address different from ${formatCidr(gw)}`);
      }
      lines.push(batchLine('addr', 'del', formatCidr(p), 'dev', br.bridge));
      present.splice(present.indexOf(p), 1);
    }
    // replace, not add: concurrent first ADDs may both find the address missing
    lines.push(batchLine('addr', 'replace', formatCidr(gw), ...brdFor(gw), 'dev', br.bridge));
    present.push(gw);
  }
  if (observed && lines.length > 0 && observed.address) {
    // pin the bridge's MAC, or it follows the lowest port MAC as veths come and go
    lines.push(batchLine('link', 'set', br.bridge, 'address', observed.address));
  }
  return lines;
}

/** The container side: sysctls first (DAD, gratuitous ARP), then addresses, link up, routes (pure). */
export function planContainer(br: Bridge, ifname: string, addressing: Addressing | undefined): { lines: string[]; sysctls: Sysctl[] } {
  const sysctls: Sysctl[] = [];
  const lines: string[] = [];
  if (addressing) {
    if (br.enabledad) sysctls.push({ path: `net/ipv6/conf/${ifname}/enhanced_dad`, value: '1' }, { path: `net/ipv6/conf/${ifname}/accept_dad`, value: '1' });
    else sysctls.push({ path: `net/ipv6/conf/${ifname}/accept_dad`, value: '0' });
    sysctls.push({ path: `net/ipv4/conf/${ifname}/arp_notify`, value: '1' });
    for (const ipc of addressing.ips) {
      const c = cidrOf(ipc.address, 'address');
      lines.push(batchLine('addr', 'add', formatCidr(c), ...brdFor(c), 'dev', ifname));
    }
  }
  if (!br.disableContainerInterface) {
    lines.push(batchLine('link', 'set', ifname, 'up'));
    if (addressing) lines.push(...planRoutes(ifname, addressing));
  }
  lines.push(batchLine('link', 'show', 'dev', ifname));
  return { lines, sysctls };
}

/** A route without a gateway goes via its family's gateway, as the reference's ConfigureIface does. */
function planRoutes(ifname: string, addressing: Addressing): string[] {
  const familyGw = new Map<Family, string>();
  for (const ipc of addressing.ips) if (ipc.gateway) familyGw.set(cidrOf(ipc.address, 'address').ip.family, ipc.gateway);
  const lines = new Set<string>();
  for (const r of addressing.routes) {
    const dst = cidrOf(r.dst, 'route');
    const gw = r.gw ?? familyGw.get(dst.ip.family);
    if (gw !== undefined) ipOf(gw, 'route gateway');
    const tokens: (string | number)[] = ['route', 'add', formatCidr({ ip: network(dst), prefix: dst.prefix })];
    if (gw !== undefined) tokens.push('via', gw);
    tokens.push('dev', ifname);
    if (r.priority !== undefined) tokens.push('metric', r.priority);
    if (r.table !== undefined) tokens.push('table', r.table);
    if (r.scope !== undefined) tokens.push('scope', r.scope);
    if (r.mtu !== undefined) tokens.push('mtu', r.mtu);
    if (r.advmss !== undefined) tokens.push('advmss', r.advmss);
    lines.add(batchLine(...tokens));
  }
  return [...lines];
}

/** `bridge -batch` lines for the port's VLANs (pure); empty without vlan/vlanTrunk. */
export function planVlans(br: Bridge, hostVeth: string): string[] {
  if (br.vlan === 0 && br.vlanTrunk.length === 0) return [];
  const lines: string[] = [];
  if (!br.preserveDefaultVlan) lines.push(batchLine('vlan', 'del', 'dev', hostVeth, 'vid', 1));
  if (br.vlan > 0) lines.push(batchLine('vlan', 'add', 'dev', hostVeth, 'vid', br.vlan, 'pvid', 'untagged'));
  for (const [lo, hi] of ranges(br.vlanTrunk)) lines.push(batchLine('vlan', 'add', 'dev', hostVeth, 'vid', lo === hi ? lo : `${lo}-${hi}`));
  return lines;
}

function ranges(sorted: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === v - 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}
