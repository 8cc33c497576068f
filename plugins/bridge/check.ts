import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { batchLine, ipBatch, parseIpJson } from '../../lib/ip/ip.ts';
import { observeLink } from '../../lib/ip/observe.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import { ipEqual, network, parseCidr, parseIp, type Cidr, type Family } from '../../lib/net/ip.ts';
import type { Bridge } from './conf.ts';

const fail = (msg: string, details?: string) => new CniError(ErrorCode.internal, msg, details);

interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  type?: string;
  pref?: string;
}

/** What CHECK reads: the bridge and host veth on the host, the interface and routes in the container. */
export interface CheckObservation {
  bridge: IpLink | undefined;
  veth: IpLink | undefined;
  container: IpLink | undefined;
  routes: KernelRoute[];
}

async function observe(ctx: PluginContext, br: Bridge, vethName: string | undefined): Promise<CheckObservation> {
  const [bridge, veth, container, routes] = await Promise.all([
    observeLink(ctx.exec, br.bridge),
    vethName ? observeLink(ctx.exec, vethName) : undefined,
    observeLink(ctx.exec, ctx.ifname, ctx.netns),
    ipBatch(ctx.exec, [batchLine('route', 'show', 'table', 'all')], { netns: ctx.netns, json: true }),
  ]);
  return { bridge, veth, container, routes: parseIpJson<KernelRoute[]>(routes) };
}

/** Compares prevResult with the kernel (pure); throws the first mismatch with a readable message. */
export function verify(br: Bridge, ifname: string, netns: string, prev: Result, seen: CheckObservation): void {
  const interfaces = prev.interfaces ?? [];
  const brIntf = interfaces.find((i) => i.name === br.bridge && !i.sandbox);
  const contIntf = interfaces.find((i) => i.name === ifname && i.sandbox === netns);
  const vethIntf = interfaces.find((i) => i !== brIntf && i !== contIntf && !i.sandbox);

  const { bridge, veth, container } = seen;
  if (!bridge) throw fail(`CNI created bridge ${br.bridge} in host namespace was not found`);
  if (bridge.linkinfo?.info_kind !== 'bridge') throw fail(`Interface ${br.bridge} does not have link type of bridge`);
  if (brIntf?.mac && brIntf.mac !== bridge.address) throw fail(`Bridge interface ${br.bridge} Mac doesn't match: ${brIntf.mac}`, `kernel has ${bridge.address}`);
  const promisc = bridge.flags.includes('PROMISC');
  if (promisc !== br.promiscMode) throw fail(`Bridge interface ${br.bridge} configured Promisc Mode ${br.promiscMode} doesn't match current state: ${promisc}`);

  if (!contIntf) throw fail(`Sandbox in prevResult doesn't match configured netns: ${netns}`, `no interface ${ifname} with sandbox ${netns} in prevResult`);
  if (!container) throw fail(`CNI created interface in container ${ifname} not found`);
  if (container.linkinfo?.info_kind !== 'veth') throw fail(`Error: Container interface ${ifname} not of type veth`);
  if (contIntf.mac && contIntf.mac !== container.address) throw fail(`Interface ${ifname} Mac ${contIntf.mac} doesn't match container Mac: ${container.address}`);

  if (!vethIntf || !veth) throw fail(`CNI veth created for bridge ${br.bridge} was not found`, vethIntf ? `${vethIntf.name} does not exist` : 'no host veth in prevResult');
  if (veth.link_index !== container.ifindex || container.link_index !== veth.ifindex) throw fail(`veth ${veth.ifname} is not the peer of ${ifname}`);
  if (veth.master !== br.bridge) throw fail(`veth ${veth.ifname} is not attached to bridge ${br.bridge}`, `its master is ${veth.master ?? 'none'}`);
  if (vethIntf.mac && vethIntf.mac !== veth.address) throw fail(`Interface ${veth.ifname} Mac doesn't match: ${vethIntf.mac} not found`);

  const have: Cidr[] = (container.addr_info ?? []).flatMap((a) => parseCidr(`${a.local}/${a.prefixlen}`) ?? []);
  for (const ipc of prev.ips ?? []) {
    const want = parseCidr(ipc.address);
    if (!want) throw fail(`invalid address ${ipc.address} in prevResult`);
    if (!have.some((h) => h.prefix === want.prefix && ipEqual(h.ip, want.ip))) throw fail(`Failed to match addr ${ipc.address} on interface ${ifname}`);
  }
  for (const route of prev.routes ?? []) {
    if (!routeFound(route.dst, route.gw, seen.routes)) throw fail(`Failed to match route ${route.dst}${route.gw ? ` via ${route.gw}` : ''} in ${netns}`);
  }
}

const familyOf = (r: KernelRoute): Family => (r.dst.includes(':') || r.gateway?.includes(':') || r.pref !== undefined ? 6 : 4);

function routeFound(dst: string, gw: string | undefined, routes: KernelRoute[]): boolean {
  const want = parseCidr(dst);
  if (!want) return false;
  const gwIp = gw === undefined ? undefined : parseIp(gw);
  return routes.some((r) => {
    if (r.table === 'local' || (r.type && r.type !== 'unicast') || familyOf(r) !== want.ip.family) return false;
    const have = r.dst === 'default' ? { ip: { family: want.ip.family, value: 0n }, prefix: 0 } : parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/${want.ip.family === 4 ? 32 : 128}`);
    if (!have || have.prefix !== want.prefix || !ipEqual(network(have), network(want))) return false;
    return gwIp === undefined || (r.gateway !== undefined && parseIp(r.gateway) !== undefined && ipEqual(parseIp(r.gateway)!, gwIp));
  });
}

export async function checkBridge(ctx: PluginContext, br: Bridge, prev: Result): Promise<void> {
  const vethName = prev.interfaces?.find((i) => i.name !== br.bridge && !i.sandbox)?.name;
  verify(br, ctx.ifname, ctx.netns, prev, await observe(ctx, br, vethName));
}
