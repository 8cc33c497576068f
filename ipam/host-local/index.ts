import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { IPConfig } from '../../lib/cni/result.ts';
import { formatIp, ipEqual, parseIp, type Ip } from '../../lib/net/ip.ts';
import { probeWritable, ReservationStore, type Owner } from '../../lib/store/reservations.ts';
import { candidates } from './candidates.ts';
import { assignRequested, formatRange, formatSubnets, parseHostLocalConf, rangeContains, setContains, type HostLocalConf, type RangeSet } from './config.ts';
import { readResolvConf } from './dns.ts';

const parse = (ctx: PluginContext): HostLocalConf => parseHostLocalConf(ctx.conf, ctx.cniArgs(['IP']).IP);
const ownerOf = (ctx: PluginContext): Owner => ({ containerId: ctx.containerId, ifname: ctx.ifname });
const fail = (msg: string, details?: string) => new CniError(ErrorCode.internal, msg, details);

function* addresses(set: RangeSet, last: string | undefined): Generator<string> {
  for (const ip of candidates(set, last === undefined ? undefined : parseIp(last))) yield formatIp(ip);
}

/** Reserves one address in set `index`: the requested one, else the next free one round-robin. */
function reserveInSet(store: ReservationStore, owner: Owner, set: RangeSet, index: number, requested: Ip | undefined, held: Ip[]): Ip {
  const failed = (why: string) => fail(`failed to allocate for range ${index}: ${why}`);
  if (requested) {
    const text = formatIp(requested);
    const range = set.find((r) => rangeContains(r, requested))!;
    if (ipEqual(requested, range.gateway)) throw failed(`requested ip ${text} is subnet's gateway`);
    if (!store.reserve(owner, index, text)) throw failed(`requested IP address ${text} is not available in range set ${set.map(formatRange).join(',')}`);
    return requested;
  }
  const dup = held.find((ip) => setContains(set, ip));
  if (dup) throw failed(`${formatIp(dup)} has been allocated to ${owner.containerId}, duplicate allocation is not allowed`);
  const address = store.allocate(owner, index, addresses(set, store.lastReserved(index)));
  if (address === undefined) throw fail(`no free address in range set ${index} (${formatSubnets(set)})`, `every address of ${set.map(formatRange).join(',')} is reserved`);
  return parseIp(address)!;
}

export default definePlugin({
  name: 'host-local',
  summary: 'hands out addresses from ranges and remembers them on disk',
  validate: (conf) => void parseHostLocalConf(conf, undefined),

  async add(ctx) {
    const conf = parse(ctx);
    const { perSet, leftover } = assignRequested(conf.sets, conf.requested);
    if (leftover.length > 0) throw fail(`failed to allocate all requested IPs: ${leftover.map(formatIp).join(' ')}`);
    const dns = conf.resolvConf === undefined ? undefined : readResolvConf(conf.resolvConf);
    const owner = ownerOf(ctx);
    const store = ReservationStore.open(conf.storeDir, true)!;
    // another ADD of this owner (a retry) finishes first: this one then finds its address held
    const unclaim = await store.claim(owner);
    try {
      await using undo = ctx.undo();
      const held = store.addressesOf(owner).map((a) => parseIp(a)!);
      const ips: IPConfig[] = conf.sets.map((set, index) => {
        const ip = reserveInSet(store, owner, set, index, perSet[index], held);
        const text = formatIp(ip);
        undo.push(`release ${text}`, () => store.releaseAddress(owner, text));
        const range = set.find((r) => rangeContains(r, ip))!;
        return { address: `${text}/${range.subnet.prefix}`, gateway: formatIp(range.gateway) };
      });
      undo.commit();
      return { ips, ...(conf.routes.length ? { routes: conf.routes } : {}), ...(dns ? { dns } : {}) };
    } finally {
      unclaim();
    }
  },

  async del(ctx) {
    const conf = parse(ctx);
    ReservationStore.open(conf.storeDir, false)?.release(ownerOf(ctx));
  },

  async check(ctx) {
    const conf = parse(ctx);
    const reserved = ReservationStore.open(conf.storeDir, false)?.addressesOf(ownerOf(ctx)) ?? [];
    if (reserved.length === 0) throw fail(`host-local: Failed to find address added by container ${ctx.containerId}`);
    for (const ipc of ctx.prevResult?.ips ?? []) {
      const ip = parseIp(ipc.address.split('/')[0]!);
      if (!ip || !conf.sets.some((set) => setContains(set, ip))) continue; // another IPAM's address
      const text = formatIp(ip);
      if (!reserved.includes(text)) throw fail(`host-local: address ${text} of prevResult is not reserved for ${ctx.containerId}/${ctx.ifname}`, `reserved: ${reserved.join(', ')}`);
    }
  },

  async gc(ctx) {
    const conf = parse(ctx);
    const valid = new Set(ctx.validAttachments().map((a) => `${a.containerID}\n${a.ifname}`));
    const freed = ReservationStore.open(conf.storeDir, false)?.gc((o) => valid.has(`${o.containerId}\n${o.ifname}`)) ?? [];
    for (const r of freed) ctx.log.info('gc freed', { address: r.address, containerId: r.containerId, ifname: r.ifname });
  },

  async status(ctx) {
    const conf = parse(ctx);
    const unwritable = probeWritable(conf.storeDir);
    if (unwritable) throw new CniError(ErrorCode.pluginNotAvailable, `dataDir ${conf.storeDir} is not writable`, unwritable);
    const store = ReservationStore.open(conf.storeDir, true)!;
    conf.sets.forEach((set, index) => {
      if (!store.hasFree(addresses(set, store.lastReserved(index)))) {
        throw new CniError(ErrorCode.pluginNotAvailable, `no free address in range set ${index} (${formatSubnets(set)})`);
      }
    });
  },
});
