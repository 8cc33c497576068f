import { batchLine } from '../../lib/ip/ip.ts';
import { peerKey, type Peer } from './peers.ts';

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

/** Neighbours the kernel makes itself on an IPv6 device (link-local, multicast): not ours. */
const kernelNeigh = (dst: string) => /^(fe[89ab][0-9a-f]|ff[0-9a-f]{2}):/i.test(dst);

/** Several remotes for one MAC (an old `append`): `replace` only swaps the first, so they are cleared. */
const SEVERAL = Symbol('several remotes');

/**
 * The device's entries keyed as the plan looks them up; a value is what the entry is right for
 * (undefined: present, but right for no peer: not onlink, not permanent).
 */
interface Held {
  /** dst → onlink gateway */
  routes: Map<string, string | undefined>;
  /** dst → permanent lladdr */
  neighs: Map<string, string | undefined>;
  /** MAC → permanent remote */
  fdb: Map<string, string | undefined | typeof SEVERAL>;
}

/** The entries of `device` in what the kernel printed (routes it made itself and link-local or multicast neighbours are not ours). */
function heldInKernel(device: string, current: PeerState): Held {
  const onDevice = (d: string | undefined) => d === undefined || d === device;
  const held: Held = { routes: new Map(), neighs: new Map(), fdb: new Map() };
  for (const r of current.routes) if (r.gateway && onDevice(r.dev) && r.protocol !== 'kernel') held.routes.set(r.dst, r.flags?.includes('onlink') ? r.gateway : undefined);
  for (const n of current.neighs) if (!kernelNeigh(n.dst) && onDevice(n.dev)) held.neighs.set(n.dst, n.state?.includes('PERMANENT') ? n.lladdr : undefined);
  for (const f of current.fdb) {
    if (!onDevice(f.ifname) || !f.flags?.includes('self') || !f.dst) continue;
    held.fdb.set(f.mac, held.fdb.has(f.mac) ? SEVERAL : f.state === 'permanent' ? f.dst : undefined);
  }
  return held;
}

/** A peer's (subnet, VTEP) pairs: IPv4, IPv6 or both; one route and one neighbour each. */
function families(p: Peer): [string, string][] {
  const out: [string, string][] = [];
  if (p.subnet !== undefined && p.vtep !== undefined) out.push([p.subnet, p.vtep]);
  if (p.subnet6 !== undefined && p.vtep6 !== undefined) out.push([p.subnet6, p.vtep6]);
  return out;
}

/** The entries a plan for `peers` leaves on the device (peers as `validatePeers` accepted them: no duplicates). */
function heldAfter(peers: Iterable<Peer>): Held {
  const held: Held = { routes: new Map(), neighs: new Map(), fdb: new Map() };
  for (const p of peers) {
    for (const [subnet, vtep] of families(p)) {
      held.routes.set(subnet, vtep);
      held.neighs.set(vtep, p.mac);
    }
    held.fdb.set(p.mac, p.ip);
  }
  return held;
}

/**
 * Desired minus current gives the `replace` lines, current minus desired the `del` lines; entries
 * already right are left alone. `replace` everywhere: `bridge fdb append` on an existing MAC is a
 * silent no-op, which would leave a moved node unreachable. Peer fields go into lines as they are:
 * they are the canonical text `validatePeers` made (digits, dots, colons, hex); the device name is
 * checked once here.
 */
export function planPeers(device: string, peers: readonly Peer[], current: PeerState): PeerPlan {
  return planAgainst(device, peers, heldInKernel(device, current));
}

/**
 * The plan from the peers last applied to `peers`, without the kernel: what `planPeers` gives
 * against the kernel state that applying `before` left (a unit test holds them equal). Both sets
 * were validated (no subnet, VTEP, address or MAC twice), so a peer found unchanged in `before`
 * owns its three entries alone: only the others are planned.
 */
export function planPeerChanges(device: string, before: readonly Peer[], peers: readonly Peer[]): PeerPlan {
  const was = new Map<string, Peer>();
  for (const p of before) was.set(peerKey(p), p);
  const changed: Peer[] = [];
  for (const p of peers) {
    const w = was.get(peerKey(p));
    if (w && w.ip === p.ip && w.mac === p.mac && w.subnet === p.subnet && w.vtep === p.vtep && w.subnet6 === p.subnet6 && w.vtep6 === p.vtep6) was.delete(peerKey(p));
    else changed.push(p);
  }
  return planAgainst(device, changed, heldAfter(was.values()));
}

function planAgainst(device: string, peers: readonly Peer[], { routes, neighs, fdb }: Held): PeerPlan {
  const dev = batchLine(device);
  const ipAdd: string[] = [];
  const bridgeAdd: string[] = [];
  let changed = 0;
  // what is left in the maps after this loop belongs to no peer
  for (const p of peers) {
    let differs = false;
    for (const [subnet, vtep] of families(p)) {
      if (neighs.get(vtep) !== p.mac) {
        ipAdd.push(`neigh replace ${vtep} lladdr ${p.mac} dev ${dev} nud permanent`);
        differs = true;
      }
      neighs.delete(vtep);
      if (routes.get(subnet) !== vtep) {
        ipAdd.push(`route replace ${subnet} via ${vtep} dev ${dev} onlink`);
        differs = true;
      }
      routes.delete(subnet);
    }
    const remote = fdb.get(p.mac);
    if (remote !== p.ip) {
      if (remote === SEVERAL) bridgeAdd.push(`fdb del ${p.mac} dev ${dev} self`);
      bridgeAdd.push(`fdb replace ${p.mac} dev ${dev} dst ${p.ip} self permanent`);
      differs = true;
    }
    fdb.delete(p.mac);
    if (differs) changed++;
  }
  // leftovers may come from the kernel, not from validated peers: these lines check every token
  const ipDel = [...[...routes.keys()].sort().map((dst) => batchLine('route', 'del', dst, 'dev', device)), ...[...neighs.keys()].sort().map((dst) => batchLine('neigh', 'del', dst, 'dev', device))];
  const bridgeDel = [...fdb.keys()].sort().map((mac) => batchLine('fdb', 'del', mac, 'dev', device, 'self'));
  return { ip: [...ipDel, ...ipAdd], bridge: [...bridgeDel, ...bridgeAdd], changed, removed: ipDel.length + bridgeDel.length };
}

/** Entries a CHECK finds missing or wrong, one readable line per peer. */
export function missingPeerEntries(device: string, peers: readonly Peer[], current: PeerState): string[] {
  const plan = planPeers(device, peers, current);
  return [...plan.ip, ...plan.bridge].filter((l) => l.includes(' replace '));
}
