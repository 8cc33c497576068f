import { batchLine } from '../../lib/ip/ip.ts';
import type { Peer } from './peers.ts';

/** What the kernel holds on the VXLAN device, as `ip -json` and `bridge -json fdb` print it. */
export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
  protocol?: string;
}
export interface IpNeigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}
export interface FdbEntry {
  mac: string;
  ifname?: string;
  dst?: string;
  flags?: string[];
  state?: string;
}

export interface PeerState {
  routes: IpRoute[];
  neighs: IpNeigh[];
  fdb: FdbEntry[];
}

/** One reconcile: lines for one `ip -batch` and one `bridge -batch`; empty when nothing differs. */
export interface PeerPlan {
  ip: string[];
  bridge: string[];
  /** Counts for the log: peers whose entries were added or changed, and entries removed. */
  changed: number;
  removed: number;
}

const isV4 = (s: string) => !s.includes(':');

/**
 * Desired minus current gives the `replace` lines, current minus desired the `del` lines; entries
 * already right are left alone. `replace` everywhere: `bridge fdb append` on an existing MAC is a
 * silent no-op, which would leave a moved node unreachable.
 */
export function planPeers(device: string, peers: readonly Peer[], current: PeerState): PeerPlan {
  const routes = new Map(current.routes.filter((r) => r.gateway && (r.dev === undefined || r.dev === device) && r.protocol !== 'kernel').map((r) => [r.dst, r]));
  const neighs = new Map(current.neighs.filter((n) => isV4(n.dst) && (n.dev === undefined || n.dev === device)).map((n) => [n.dst, n]));
  const fdb = new Map<string, FdbEntry[]>();
  for (const f of current.fdb) {
    if ((f.ifname !== undefined && f.ifname !== device) || !f.flags?.includes('self') || !f.dst) continue;
    fdb.set(f.mac, [...(fdb.get(f.mac) ?? []), f]);
  }

  const ipAdd: string[] = [];
  const ipDel: string[] = [];
  const bridgeLines: string[] = [];
  const wanted = { routes: new Set<string>(), neighs: new Set<string>(), macs: new Set<string>() };
  let changed = 0;
  for (const p of peers) {
    let differs = false;
    wanted.routes.add(p.subnet);
    wanted.neighs.add(p.vtep);
    wanted.macs.add(p.mac);
    const n = neighs.get(p.vtep);
    if (!n || n.lladdr !== p.mac || !n.state?.includes('PERMANENT')) {
      ipAdd.push(batchLine('neigh', 'replace', p.vtep, 'lladdr', p.mac, 'dev', device, 'nud', 'permanent'));
      differs = true;
    }
    const r = routes.get(p.subnet);
    if (!r || r.gateway !== p.vtep || !r.flags?.includes('onlink')) {
      ipAdd.push(batchLine('route', 'replace', p.subnet, 'via', p.vtep, 'dev', device, 'onlink'));
      differs = true;
    }
    const f = fdb.get(p.mac) ?? [];
    if (f.length !== 1 || f[0]!.dst !== p.ip || f[0]!.state !== 'permanent') {
      // several remotes for one MAC (an old `append`): clear them, `replace` only swaps the first
      if (f.length > 1) bridgeLines.push(batchLine('fdb', 'del', p.mac, 'dev', device, 'self'));
      bridgeLines.push(batchLine('fdb', 'replace', p.mac, 'dev', device, 'dst', p.ip, 'self', 'permanent'));
      differs = true;
    }
    if (differs) changed++;
  }
  let removed = 0;
  for (const dst of [...routes.keys()].sort()) {
    if (!wanted.routes.has(dst)) (ipDel.push(batchLine('route', 'del', dst, 'dev', device)), removed++);
  }
  for (const dst of [...neighs.keys()].sort()) {
    if (!wanted.neighs.has(dst)) (ipDel.push(batchLine('neigh', 'del', dst, 'dev', device)), removed++);
  }
  for (const mac of [...fdb.keys()].sort()) {
    if (!wanted.macs.has(mac)) (bridgeLines.unshift(batchLine('fdb', 'del', mac, 'dev', device, 'self')), removed++);
  }
  return { ip: [...ipDel, ...ipAdd], bridge: bridgeLines, changed, removed };
}

/** Entries a CHECK finds missing or wrong, one readable line per peer. */
export function missingPeerEntries(device: string, peers: readonly Peer[], current: PeerState): string[] {
  const plan = planPeers(device, peers, current);
  return [...plan.ip, ...plan.bridge].filter((l) => l.includes(' replace '));
}

/** The kernel state `planPeers` leaves for `peers`: what the event path diffs against. */
export function programmedState(device: string, peers: readonly Peer[]): PeerState {
  return {
    routes: peers.map((p) => ({ dst: p.subnet, gateway: p.vtep, dev: device, flags: ['onlink'] })),
    neighs: peers.map((p) => ({ dst: p.vtep, dev: device, lladdr: p.mac, state: ['PERMANENT'] })),
    fdb: peers.map((p) => ({ mac: p.mac, ifname: device, dst: p.ip, flags: ['self'], state: 'permanent' })),
  };
}
