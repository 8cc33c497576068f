import { batchLine, ipBatch } from '../../lib/ip/ip.ts';
import { formatCidr, parseSubnet } from '../../lib/net/ip.ts';
import type { Conf } from './conf.ts';
import { etcdClient, releaseLease } from './etcd-registry.ts';
import { observeLinks } from './kernel.ts';
import { removeMasq } from './masq.ts';
import type { Env, ReconcileSummary } from './node.ts';
import { readState, removeState } from './state.ts';
import { watchNode } from './watch.ts';
import { ensureNode } from './writer.ts';

/**
 * The vxlan node's public surface for the operator command (`tscni vxlan`): reconcile once, watch,
 * tear down. The lock and record protocol stays behind it (writer.ts); ADD runs the same one.
 * Apart from index.ts so a plugin call does not load the watcher.
 */

export { parseVxlanConf, type Conf } from './conf.ts';
export type { Env as NodeEnv, ReconcileSummary } from './node.ts';

export interface SyncReport extends ReconcileSummary {
  subnet?: string;
  subnet6?: string;
  device: string;
  mtu: number;
}

/**
 * One reconcile (`tscni vxlan sync`): diffs against the applied record when it is usable, or, with
 * `full`, against the kernel's entries (repairing what changed behind our back).
 */
export async function reconcileOnce(env: Env, conf: Conf, options: { full: boolean }): Promise<SyncReport> {
  const { node, summary } = await ensureNode(env, conf, { mode: options.full ? 'full' : 'sync' });
  const { v4, v6 } = node.subnets;
  return { ...(v4 ? { subnet: formatCidr(v4) } : {}), ...(v6 ? { subnet6: formatCidr(v6) } : {}), device: conf.device, mtu: node.mtu, ...summary };
}

/** Keeps the node reconciled (`tscni vxlan sync --watch`) until its signal aborts. */
export { watchNode as watch };

/** What teardown removed: the links among the device and the bridge, and whether there was state. */
export interface TeardownReport {
  removed: string[];
  state: boolean;
}

/** Removes the device, the bridge, the masquerade rules, the state and the etcd lease. */
export async function teardown(env: Env, conf: Conf): Promise<TeardownReport> {
  const state = readState(conf.stateDir, conf.device);
  const subnets = { v4: state?.subnet === undefined ? undefined : parseSubnet(state.subnet), v6: state?.subnet6 === undefined ? undefined : parseSubnet(state.subnet6) };
  if (conf.source.kind === 'etcd' && state) {
    const client = etcdClient(conf.source.etcd);
    try {
      await releaseLease(client, conf.source.etcd, subnets, state.ip, state.leaseId);
    } catch (err) {
      env.log.warn('could not release the etcd lease; it expires with its TTL', { error: (err as Error).message });
    } finally {
      client.close();
    }
  }
  // the device's routes, neighbours and FDB entries go with it
  const links = (await observeLinks(env.exec)).links.map((l) => l.ifname);
  const gone = [conf.device, conf.bridge].filter((d) => links.includes(d));
  await ipBatch(env.exec, gone.map((d) => batchLine('link', 'del', d)));
  await removeMasq(env.exec, conf.device);
  removeState(conf.stateDir, conf.device);
  return { removed: gone, state: !!state };
}
