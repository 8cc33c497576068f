import { existsSync } from 'node:fs';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type Plugin, type PluginContext } from '../../lib/cni/plugin.ts';
import { refuseOwnNetns } from '../../lib/ip/netns-guard.ts';
import { formatCidr, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import { parseVxlanConf, type Conf } from './conf.ts';
import { planDevice } from './device.ts';
import { etcdClient, etcdPeerInputs, subnetsPrefix } from './etcd-registry.ts';
import { ipForwardOn, observeLinks, observeNode } from './kernel.ts';
import { deviceSpec, ensureNode, localIdentity } from './node.ts';
import { validatePeers, type PeerInput } from './peers.ts';
import { missingPeerEntries } from './reconcile.ts';
import { localPeers } from './sources.ts';
import { readState } from './state.ts';

/** What the bridge (and its IPAM) read as sent: MAC/IP requests, GC's valid attachments, NetworkPolicy in-process. */
const PASSED_TO_BRIDGE = ['args', 'runtimeConfig', 'dns', 'cni.dev/valid-attachments', 'cni.dev/attachments', 'policy'] as const;

/** The bridge attachment of a pod on this node: host-local over the node's subnet, a route to the cluster. */
export function bridgeConf(conf: Conf, cniVersion: string, subnet: Cidr, mtu: number | undefined): Record<string, unknown> {
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
      ranges: [[{ subnet: formatCidr(subnet) }]],
      routes: conf.isDefaultGateway ? [] : [{ dst: formatCidr(conf.network) }],
    },
  };
}

/** The bridge plugin, run in-process; imported directly, not through the registry that lists vxlan. */
async function bridgePlugin(): Promise<Plugin> {
  return (await import('../bridge/index.ts')).default;
}

/** The node's subnet as remembered (DEL, CHECK, GC never lease one). */
function knownSubnet(conf: Conf): Cidr | undefined {
  const state = readState(conf.stateDir, conf.device);
  return conf.subnet ?? (state ? parseSubnet(state.subnet) : undefined);
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
  const subnet = knownSubnet(conf);
  if (!subnet) throw new CniError(ErrorCode.internal, 'this node has no subnet yet');
  const obs = await observeNode(ctx.exec, conf.device);
  const node = { ...localIdentity(conf, obs), subnet };
  const device = obs.links.find((l) => l.ifname === conf.device);
  if (!device) throw new CniError(ErrorCode.internal, `vxlan device ${conf.device} is missing`);
  const diff = planDevice(deviceSpec(conf, node), device);
  if (diff.lines.length) throw new CniError(ErrorCode.internal, `vxlan device ${conf.device} differs from its config`, diff.recreate ?? diff.lines.join('; '));
  if (!ipForwardOn()) throw new CniError(ErrorCode.internal, 'ip_forward is off on this node');
  const { peers } = validatePeers(await peerInputs(conf), { subnet, ip: node.underlay.ip }, conf.network, conf.vni);
  const missing = missingPeerEntries(conf.device, peers, obs.peers);
  if (missing.length) throw new CniError(ErrorCode.internal, `missing peer entries on ${conf.device}: ${missing.length}`, missing.slice(0, 20).join('; '));
  await (await bridgePlugin()).check(ctx.withConf(bridgeConf(conf, ctx.cniVersion, subnet, node.mtu), ctx.prevResult));
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
    ctx.log.debug('node reconciled', { ...summary, subnet: formatCidr(node.subnet) });
    return bridge.add(ctx.withConf(bridgeConf(conf, ctx.cniVersion, node.subnet, node.mtu), ctx.prevResult));
  },

  async del(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    // the device and peers stay: they serve the node, not this pod
    const subnet = knownSubnet(conf) ?? conf.network;
    await (await bridgePlugin()).del(ctx.withConf(bridgeConf(conf, ctx.cniVersion, subnet, undefined), ctx.prevResult));
  },

  check,

  async gc(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    const bridge = await bridgePlugin();
    await bridge.gc?.(ctx.withConf(bridgeConf(conf, ctx.cniVersion, knownSubnet(conf) ?? conf.network, undefined)));
  },

  async status(ctx) {
    const conf = parseVxlanConf(ctx.conf);
    if (!knownSubnet(conf)) throw new CniError(ErrorCode.pluginNotAvailable, 'this node has no subnet yet', 'run an ADD or `tscni vxlan sync`');
    const { links } = await observeLinks(ctx.exec);
    const device = links.find((l) => l.ifname === conf.device);
    if (!device?.flags.includes('UP')) throw new CniError(ErrorCode.pluginNotAvailable, `vxlan device ${conf.device} is not up`);
  },
});
