import { readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { listReservations as readStore } from '../store/reservations.ts';

/** host-local's default store: one directory per network. */
export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

/** One address held in a host-local store. */
export interface Reservation {
  network: string;
  address: string;
  containerID: string;
  /** '' in stores written before host-local recorded it. */
  ifname: string;
  /** When the reservation file was written (ISO 8601). */
  since: string;
  file: string;
}

const NETWORK_DIR = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Every reservation under a host-local data dir (the reference's layout, which ours keeps), read
 * through the store's own read API. Read-only and lock-free: a listing, not a transaction.
 */
export function listReservations(dataDir: string, network?: string): Reservation[] {
  const networks = network ? [network] : listDirs(dataDir);
  return networks.flatMap((net) => readNetwork(dataDir, net)).sort((a, b) => a.network.localeCompare(b.network) || compareAddresses(a.address, b.address));
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && NETWORK_DIR.test(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

function readNetwork(dataDir: string, network: string): Reservation[] {
  const dir = join(dataDir, network);
  return readStore(dir).map((r) => ({ network, address: r.address, containerID: r.containerId, ifname: r.ifname, since: r.mtime.toISOString(), file: join(dir, r.address) }));
}

/** Numeric order, IPv4 before IPv6. */
function compareAddresses(a: string, b: string): number {
  const key = (ip: string) => (isIP(ip) === 4 ? ip.split('.').map((o) => o.padStart(3, '0')).join('.') : `~${expandV6(ip)}`);
  return key(a).localeCompare(key(b));
}

function expandV6(ip: string): string {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => g.padStart(4, '0')).join(':');
}
