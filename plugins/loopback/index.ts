import { existsSync } from 'node:fs';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { readNetConf } from '../../lib/cni/netconf.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { ipBatch, parseIpJson } from '../../lib/ip/ip.ts';
import { refuseOwnNetns } from '../../lib/ip/netns-guard.ts';
import type { IpLink } from '../../lib/ip/types.ts';

/** Loopback always works on `lo`, whatever CNI_IFNAME says (as the reference plugin). */
const LO = 'lo';
const LOOPBACK_MAC = '00:00:00:00:00:00';

async function setLo(ctx: PluginContext, state: 'up' | 'down'): Promise<IpLink | undefined> {
  const out = await ipBatch(ctx.exec, [`link set ${LO} ${state}`, `addr show dev ${LO}`], { netns: ctx.netns, json: true });
  return parseIpJson<IpLink[]>(out)[0];
}

export function toResult(lo: IpLink | undefined, netns: string): Result {
  const ips = (lo?.addr_info ?? [])
    .filter((a) => a.family === 'inet' || a.family === 'inet6')
    .map((a) => ({ interface: 0, address: `${a.local}/${a.prefixlen}` }));
  return { interfaces: [{ name: LO, mac: LOOPBACK_MAC, sandbox: netns }], ips };
}

export default definePlugin({
  name: 'loopback',
  summary: 'brings up the loopback interface of a container',
  // Loopback reads only the common fields, which the core checks (readNetConf) before every verb.
  validate: (conf) => void readNetConf(conf),

  async add(ctx) {
    requireNetns(ctx.netns);
    return toResult(await setLo(ctx, 'up'), ctx.netns);
  },

  async del(ctx) {
    if (!ctx.netns || !existsSync(ctx.netns)) return; // the namespace is gone, and lo with it
    await setLo(ctx, 'down');
  },

  async check(ctx) {
    requireNetns(ctx.netns);
    const out = await ipBatch(ctx.exec, [`link show dev ${LO}`], { netns: ctx.netns, json: true });
    const lo = parseIpJson<IpLink[]>(out)[0];
    if (!lo?.flags.includes('UP')) throw new CniError(ErrorCode.internal, 'loopback interface is down', `in ${ctx.netns}`);
  },
});

function requireNetns(netns: string): void {
  if (!existsSync(netns)) throw new CniError(ErrorCode.unknownContainer, `network namespace ${netns} does not exist`);
  refuseOwnNetns(netns);
}
