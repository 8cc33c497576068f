import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareIp, parseIp } from '../lib/net/ip.ts';
import { isStoreName, listReservations } from '../lib/store/reservations.ts';

export { DEFAULT_DATA_DIR } from '../lib/store/reservations.ts';

/** One address held in a host-local store, with the network (store directory) and file it is in. */
export interface NetworkReservation {
  network: string;
  address: string;
  containerID: string;
  /** '' in stores written before host-local recorded it. */
  ifname: string;
  /** When the reservation file was written (ISO 8601). */
  since: string;
  file: string;
}

/**
 * Every reservation under a host-local data dir (the reference's layout, which ours keeps), read
 * through the store's own read API. Read-only and lock-free: a listing, not a transaction.
 */
export function listNetworkReservations(dataDir: string, network?: string): NetworkReservation[] {
  const networks = network ? [network] : listDirs(dataDir);
  return networks.flatMap((net) => readNetwork(dataDir, net)).sort((a, b) => a.network.localeCompare(b.network) || compareAddresses(a.address, b.address));
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && isStoreName(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

function readNetwork(dataDir: string, network: string): NetworkReservation[] {
  const dir = join(dataDir, network);
  return listReservations(dir).map((r) => ({ network, address: r.address, containerID: r.containerId, ifname: r.ifname, since: r.mtime.toISOString(), file: join(dir, r.address) }));
}

/** Numeric order, IPv4 before IPv6 (the store holds only canonical addresses). */
const compareAddresses = (a: string, b: string): number => compareIp(parseIp(a)!, parseIp(b)!);
