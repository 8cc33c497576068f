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
 * silent no-op, which would leave a moved node unreachable. Peer fields go into lines as they are:
 * they are the canonical text `validatePeers` made (digits, dots, colons, hex); the device name is
 * checked once here.
 */
export function planPeers(device: string, peers: readonly Peer[], current: PeerState): PeerPlan {
  const dev = batchLine(device);
  const onDevice = (d: string | undefined) => d === undefined || d === device;
  const routes = new Map<string, IpRoute>();
  for (const r of current.routes) if (r.gateway && onDevice(r.dev) && r.protocol !== 'kernel') routes.set(r.dst, r);
  const neighs = new Map<string, IpNeigh>();
  for (const n of current.neighs) if (isV4(n.dst) && onDevice(n.dev)) neighs.set(n.dst, n);
  const fdb = new Map<string, FdbEntry[]>();
  for (const f of current.fdb) {
    if (!onDevice(f.ifname) || !f.flags?.includes('self') || !f.dst) continue;
    const same = fdb.get(f.mac);
    if (same) same.push(f);
    else fdb.set(f.mac, [f]);
  }

  const ipAdd: string[] = [];
  const bridgeAdd: string[] = [];
  let changed = 0;
  // what is left in the maps after this loop belongs to no peer
  for (const p of peers) {
    let differs = false;
    const n = neighs.get(p.vtep);
    neighs.delete(p.vtep);
    if (!n || n.lladdr !== p.mac || !n.state?.includes('PERMANENT')) {
      ipAdd.push(`neigh replace ${p.vtep} lladdr ${p.mac} dev ${dev} nud permanent`);
      differs = true;
    }
    const r = routes.get(p.subnet);
    routes.delete(p.subnet);
    if (!r || r.gateway !== p.vtep || !r.flags?.includes('onlink')) {
      ipAdd.push(`route replace ${p.subnet} via ${p.vtep} dev ${dev} onlink`);
      differs = true;
    }
    const f = fdb.get(p.mac);
    fdb.delete(p.mac);
    if (f?.length !== 1 || f[0]!.dst !== p.ip || f[0]!.state !== 'permanent') {
      // several remotes for one MAC (an old `append`): clear them, `replace` only swaps the first
      if (f && f.length > 1) bridgeAdd.push(`fdb del ${p.mac} dev ${dev} self`);
      bridgeAdd.push(`fdb replace ${p.mac} dev ${dev} dst ${p.ip} self permanent`);
      differs = true;
    }
    if (differs) changed++;
  }
  // leftovers come from the kernel, not from validated peers: these lines check every token
  const ipDel = [...[...routes.keys()].sort().map((dst) => batchLine('route', 'del', dst, 'dev', device)), ...[...neighs.keys()].sort().map((dst) => batchLine('neigh', 'del', dst, 'dev', device))];
  const bridgeDel = [...fdb.keys()].sort().map((mac) => batchLine('fdb', 'del', mac, 'dev', device, 'self'));
  return { ip: [...ipDel, ...ipAdd], bridge: [...bridgeDel, ...bridgeAdd], changed, removed: ipDel.length + bridgeDel.length };
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
