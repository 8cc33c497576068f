import { existsSync } from 'node:fs';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type Plugin, type PluginContext } from '../../lib/cni/plugin.ts';
import { refuseOwnNetns } from '../../lib/ip/netns-guard.ts';
import { formatCidr, type Cidr } from '../../lib/net/ip.ts';
import { parseVxlanConf, podFamilies, subnetsText, type Conf, type NodeSubnets } from './conf.ts';
import { planDevice } from './device.ts';
import { etcdClient, etcdPeerInputs, subnetsPrefix } from './etcd-registry.ts';
import { ipForwardOn, observeLinks, observeNode } from './kernel.ts';
import { deviceSpec, localIdentity, selfOf } from './node.ts';
import { validatePeers, type PeerInput } from './peers.ts';
import { missingPeerEntries } from './reconcile.ts';
import { localPeers } from './sources.ts';
import { readState, stateSubnets } from './state.ts';
import { ensureNode } from './writer.ts';

/** What the bridge (and its IPAM) read as sent: MAC/IP requests, GC's valid attachments, NetworkPolicy in-process. */
const PASSED_TO_BRIDGE = ['args', 'runtimeConfig', 'dns', 'cni.dev/valid-attachments', 'cni.dev/attachments', 'policy'] as const;

/**
 * The bridge attachment of a pod on this node: host-local over the node's subnets (one range set
 * per family: one address of each), a route to each cluster network.
 */
export function bridgeConf(conf: Conf, cniVersion: string, subnets: NodeSubnets, mtu: number | undefined): Record<string, unknown> {
  const { type: _type, ranges: _ranges, routes: _routes, ...ipamExtra } = (conf.ipam ?? {}) as Record<string, unknown>;
  const loose = conf as unknown as Record<string, unknown>; // the parsed config keeps the runtime's extra keys
  const passed = Object.fromEntries(PASSED_TO_BRIDGE.filter((k) => loose[k] !== undefined).map((k) => [k, loose[k]]));
  return {
    ...passed,
    cniVersion,
    name: conf.name,
    type: 'bridge',
    bridge: conf.bridge,
    isGateway: true,
    isDefaultGateway: conf.isDefaultGateway,
    ipMasq: false,
    ...(mtu ? { mtu } : {}),
    ipam: {
      ...ipamExtra,
      type: 'host-local',
      ranges: [subnets.v4, subnets.v6].filter((c): c is Cidr => c !== undefined).map((c) => [{ subnet: formatCidr(c) }]),
      routes: conf.isDefaultGateway ? [] : [conf.network, conf.network6].filter((c): c is Cidr => c !== undefined).map((c) => ({ dst: formatCidr(c) })),
    },
  };
}

/** The bridge plugin, run in-process; imported directly, not through the registry that lists vxlan. */
async function bridgePlugin(): Promise<Plugin> {
  return (await import('../bridge/index.ts')).default;
}

/** The node's subnets as configured or remembered (DEL, CHECK, GC never lease any). */
function knownSubnets(conf: Conf): NodeSubnets | undefined {
  if ((!conf.network || conf.subnet) && (!conf.network6 || conf.subnet6)) return { v4: conf.subnet, v6: conf.subnet6 };
  return stateSubnets(readState(conf.stateDir, conf.device), conf);
}

function requireNetns(netns: string): void {
  if (!netns || !existsSync(netns)) throw new CniError(ErrorCode.unknownContainer, `network namespace ${JSON.stringify(netns)} does not exist`);
  refuseOwnNetns(netns); // before the node side leases or builds anything for a pod we will refuse
}

async function peerInputs(conf: Conf): Promise<PeerInput[]> {
  const source = conf.source;
  if (source.kind !== 'etcd') {
    const read = localPeers(source);
    if ('error' in read) throw new CniError(ErrorCode.ioFailure, read.error);
    return read.inputs;
  }
  const client = etcdClient(source.etcd);
  try {
    return etcdPeerInputs(source.etcd, (await client.rangePrefix(subnetsPrefix(source.etcd))).kvs, conf.vni);
  } finally {
    client.close();
  }
}

async function check(ctx: PluginContext): Promise<void> {
  const conf = parseVxlanConf(ctx.conf);
  requireNetns(ctx.netns);
  const subnets = knownSubnets(conf);
  if (!subnets) throw new CniError(ErrorCode.internal, 'this node has no subnet yet');
  const obs = await observeNode(ctx.exec, conf.device, !!conf.network6);
  const node = { ...localIdentity(conf, obs), subnets };
  const device = obs.links.find((l) => l.ifname === conf.device);
  if (!device) throw new CniError(ErrorCode.internal, `vxlan device ${conf.device} is missing`);
  const diff = planDevice(deviceSpec(conf, node), device);
  if (diff.lines.length) throw new CniError(ErrorCode.internal, `vxlan device ${conf.device} differs from its config`, diff.recreate ?? diff.lines.join('; '));
  if (!ipForwardOn(podFamilies(conf))) throw new CniError(ErrorCode.internal, conf.network6 ? 'forwarding (IPv4 or IPv6) is off on this node' : 'ip_forward is off on this node');
  const { peers } = validatePeers(await peerInputs(conf), selfOf(node), conf, conf.vni);
  const missing = missingPeerEntries(conf.device, peers, obs.peers);
  if (missing.length) throw new CniError(ErrorCode.internal, `missing peer entries on ${conf.device}: ${missing.length}`, missing.slice(0, 20).join('; '));
  await (await bridgePlugin()).check(ctx.withConf(bridgeConf(conf, ctx.cniVersion, subnets, node.mtu), ctx.prevResult));
}

export default definePlugin({
  name: 'vxlan',
  summary: 'pods on different nodes reach each other over a VXLAN overlay (flannel-style), peers from a file or etcd',
  validate: (conf) => void parseVxlanConf(conf),
  // its `ipam` only adds to the host-local config bridgeConf writes from the node's subnet
  buildsOwnIpam: true,

  async add(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    requireNetns(ctx.netns);
    const bridge = await bridgePlugin();
    const { node, summary } = await ensureNode(ctx, conf, { mode: 'add' });
    ctx.log.debug('node reconciled', { ...summary, subnet: subnetsText(node.subnets) });
    return bridge.add(ctx.withConf(bridgeConf(conf, ctx.cniVersion, node.subnets, node.mtu), ctx.prevResult));
  },

  async del(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    // the device and peers stay: they serve the node, not this pod
    const subnets = knownSubnets(conf) ?? { v4: conf.network, v6: conf.network6 };
    await (await bridgePlugin()).del(ctx.withConf(bridgeConf(conf, ctx.cniVersion, subnets, undefined), ctx.prevResult));
  },

  check,

  async gc(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    const bridge = await bridgePlugin();
    await bridge.gc?.(ctx.withConf(bridgeConf(conf, ctx.cniVersion, knownSubnets(conf) ?? { v4: conf.network, v6: conf.network6 }, undefined)));
  },

  async status(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    if (!knownSubnets(conf)) throw new CniError(ErrorCode.pluginNotAvailable, 'this node has no subnet yet', 'run an ADD or `tscni vxlan sync`');
    const { links } = await observeLinks(ctx.exec);
    const device = links.find((l) => l.ifname === conf.device);
    if (!device?.flags.includes('UP')) throw new CniError(ErrorCode.pluginNotAvailable, `vxlan device ${conf.device} is not up`);
  },
});
