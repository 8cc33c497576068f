import { existsSync } from 'node:fs';
import { shellAssign, shellCommand } from './shell-quote.ts';
import { cacheDirFor, DEFAULT_CACHE_DIR, listCachedAttachments, type CachedAttachment } from './cache.ts';
import { defineCommand, EXIT, table } from './command.ts';
import { DEFAULT_DATA_DIR, listNetworkReservations, type NetworkReservation } from './reservations.ts';
import { UsageError, validName } from './runtime-conf.ts';

const HELP = `tscni ipam ls [<network>] | tscni ipam leaks [<network>]

  ls      every address reservation: network, address, container ID, ifname, since when
  leaks   reservations whose container has no cached attachment, or whose netns is gone
          (exit 1 when there are any), each with the command that releases it

Options:
  --data-dir DIR    host-local store (default ${DEFAULT_DATA_DIR})
  --cache-dir DIR   libcni result cache (env CNI_CACHEDIR, default ${DEFAULT_CACHE_DIR})
  --json            machine-readable output
`;

export interface Leak extends NetworkReservation {
  reason: string;
  fix: string;
}

/** Reservations that no live attachment accounts for (pure, given the netns check). */
export function findLeaks(reservations: readonly NetworkReservation[], cached: readonly CachedAttachment[], netnsExists: (path: string) => boolean = existsSync): Leak[] {
  const leaks: Leak[] = [];
  for (const r of reservations) {
    const owner = cached.find((a) => a.networkName === r.network && a.containerId === r.containerID && (!r.ifname || a.ifName === r.ifname));
    const ifname = r.ifname || 'eth0';
    if (!owner) {
      leaks.push({ ...r, reason: 'no cached attachment', fix: `${shellAssign('CNI_CONTAINERID', r.containerID)} ${shellAssign('CNI_IFNAME', ifname)} ${shellCommand(['tscni', 'del', r.network])}` });
    } else if (owner.netns && !netnsExists(owner.netns)) {
      leaks.push({ ...r, reason: `netns gone: ${owner.netns}`, fix: shellCommand(['tscni', 'gc', r.network]) });
    }
  }
  return leaks;
}

export default defineCommand({
  flags: { 'data-dir': 'string', 'cache-dir': 'string' },
  help: () => HELP,
  async run(ctx) {
    const [action, network, ...extra] = ctx.args.positionals;
    if (action !== 'ls' && action !== 'leaks') throw new UsageError(action ? `unknown ipam command ${JSON.stringify(action)}` : 'missing ls or leaks');
    if (extra.length > 0) throw new UsageError('too many arguments');
    if (network !== undefined) validName('network name', network);
    const dataDir = ctx.args.strings.get('data-dir') || DEFAULT_DATA_DIR;
    const reservations = listNetworkReservations(dataDir, network);
    if (action === 'ls') {
      if (ctx.json) ctx.out(JSON.stringify(reservations.map(({ file: _file, ...r }) => r)) + '\n');
      else if (reservations.length === 0) ctx.out(`no reservations in ${dataDir}${network ? `/${network}` : ''}\n`);
      else ctx.out(table([['NETWORK', 'ADDRESS', 'CONTAINER', 'IFNAME', 'SINCE'], ...reservations.map((r) => [r.network, r.address, r.containerID, r.ifname || '-', r.since])]));
      return EXIT.ok;
    }
    const cacheDir = cacheDirFor(ctx);
    const leaks = findLeaks(reservations, listCachedAttachments(cacheDir));
    if (ctx.json) ctx.out(JSON.stringify(leaks.map(({ file: _file, ...l }) => l)) + '\n');
    else if (leaks.length === 0) ctx.out(`no leaks: every reservation in ${dataDir} has a live attachment\n`);
    else ctx.out(table([['NETWORK', 'ADDRESS', 'CONTAINER', 'IFNAME', 'WHY', 'FIX'], ...leaks.map((l) => [l.network, l.address, l.containerID, l.ifname || '-', l.reason, l.fix])]));
    return leaks.length > 0 ? EXIT.failure : EXIT.ok;
  },
});
