import type { Exec } from '../../lib/exec.ts';
import { batchLine, bridgeBatch, ipBatch, parseIpJson } from '../../lib/ip/ip.ts';
import { readBatch } from '../../lib/ip/read-batch.ts';
import { ensureHostSysctl, hostSysctl, validSysctl } from '../../lib/ip/sysctl.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import type { FdbEntry, IpNeigh, IpRoute, PeerState } from './reconcile.ts';

/** The node's links and default route: enough to know the underlay and whether the device is right. */
export interface NodeLinks {
  links: IpLink[];
  /** The default route(s) of the main table. */
  routes: IpRoute[];
}

/** Links plus what the VXLAN device holds for its peers. */
export interface NodeObservation extends NodeLinks {
  peers: PeerState;
}

const LINK_LINES = ['addr show', 'route show default'];

/** Several reads in one `ip -d -json` spawn; a read filtered to a missing device reads as `[]`. */
const ipReads = (exec: Exec, lines: readonly string[]) => readBatch(exec, lines, { details: true });

const deviceLines = (device: string) => [batchLine('route', 'show', 'dev', device), batchLine('neigh', 'show', 'dev', device)];

/** The device's IPv6 routes: an `ip -batch` line cannot choose the family, so `ip -6` reads them. */
async function readRoutes6(exec: Exec, device: string, v6: boolean): Promise<IpRoute[]> {
  if (!v6) return [];
  const [routes] = await readBatch(exec, [batchLine('route', 'show', 'dev', device)], { family: 6 });
  return routes as IpRoute[];
}

async function readFdb(exec: Exec, device: string): Promise<FdbEntry[]> {
  const [fdb] = await readBatch(exec, [batchLine('fdb', 'show', 'dev', device)], { tool: 'bridge' });
  return fdb as FdbEntry[];
}

/** Links and default route in one `ip` spawn (what STATUS, teardown and an unchanged ADD need). */
export async function observeLinks(exec: Exec): Promise<NodeLinks> {
  const [links = [], routes = []] = (await ipReads(exec, LINK_LINES)) as [IpLink[]?, IpRoute[]?];
  return { links, routes };
}

/** The device's routes, neighbours and FDB entries: one `ip` and one `bridge` spawn (and `ip -6` with `v6`), in parallel. */
export async function observePeerState(exec: Exec, device: string, v6: boolean): Promise<PeerState> {
  const [[routes = [], neighs = []], routes6, fdb] = await Promise.all([ipReads(exec, deviceLines(device)) as Promise<[IpRoute[]?, IpNeigh[]?]>, readRoutes6(exec, device, v6), readFdb(exec, device)]);
  return { routes: [...routes, ...routes6], neighs, fdb };
}

/** Everything a full reconcile decides from, in one `ip` and one `bridge` spawn (and `ip -6` with `v6`), in parallel. */
export async function observeNode(exec: Exec, device: string, v6: boolean): Promise<NodeObservation> {
  const [[links = [], routes = [], peerRoutes = [], neighs = []], routes6, fdb] = await Promise.all([
    ipReads(exec, [...LINK_LINES, ...deviceLines(device)]) as Promise<[IpLink[]?, IpRoute[]?, IpRoute[]?, IpNeigh[]?]>,
    readRoutes6(exec, device, v6),
    readFdb(exec, device),
  ]);
  return { links, routes, peers: { routes: [...peerRoutes, ...routes6], neighs, fdb } };
}

/**
 * One `ip -batch` and one `bridge -batch` on a device that exists, side by side: a route, its
 * neighbour and its FDB entry are independent kernel objects.
 */
export async function applyNode(exec: Exec, ipLines: readonly string[], bridgeLines: readonly string[]): Promise<void> {
  const [ip, bridge] = await Promise.allSettled([ipBatch(exec, ipLines), bridgeBatch(exec, bridgeLines)]);
  if (ip.status === 'rejected') throw ip.reason;
  if (bridge.status === 'rejected') throw bridge.reason;
}

/**
 * Creates the device with `ipLines`, then its FDB entries (which name it), and returns its ifindex,
 * read back by the same `ip -batch` (a `link show` line at its end): no extra spawn.
 */
export async function createNode(exec: Exec, device: string, ipLines: readonly string[], bridgeLines: readonly string[]): Promise<number> {
  const out = await ipBatch(exec, [...ipLines, batchLine('link', 'show', 'dev', device)], { json: true });
  await bridgeBatch(exec, bridgeLines);
  const [link] = parseIpJson<IpLink[]>(out);
  if (!link) throw new Error(`vxlan device ${device} is missing right after its creation`);
  return link.ifindex;
}

/**
 * Pods on other nodes are reached through this node: it must forward, IPv6 too with an IPv6
 * cluster network. A forwarding interface ignores router advertisements unless `accept_ra` is 2,
 * so the underlay's 1 becomes 2 first: a node configured by RAs keeps its default route.
 */
export function ensureIpForward(families: { v4: boolean; v6: boolean }, underlay: string): void {
  if (families.v4) ensureHostSysctl({ path: 'net/ipv4/ip_forward', value: '1' });
  if (!families.v6) return;
  const acceptRa = `net/ipv6/conf/${underlay}/accept_ra`;
  if (validSysctl({ path: acceptRa, value: '2' }) && hostSysctl(acceptRa) === '1') ensureHostSysctl({ path: acceptRa, value: '2' });
  ensureHostSysctl({ path: 'net/ipv6/conf/all/forwarding', value: '1' });
}

export const ipForwardOn = (families: { v4: boolean; v6: boolean }) => (!families.v4 || hostSysctl('net/ipv4/ip_forward') === '1') && (!families.v6 || hostSysctl('net/ipv6/conf/all/forwarding') === '1');

export { disableTxChecksum } from '../../lib/ip/ethtool.ts';
