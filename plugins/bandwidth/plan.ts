import { attachmentHash, digestHex } from '../../lib/digest.ts';
import { batchLine } from '../../lib/ip/ip.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import type { Bucket, Limits } from './conf.ts';

/** `bwp` + 12 hex of sha512(network + containerID): the reference plugin's ifb name. */
export function ifbName(network: string, containerId: string): string {
  return 'bwp' + attachmentHash(network, containerId).slice(0, 12);
}

/** Marks an ifb as ours and as this network's, so GC can find it without state files. */
export function ifbAlias(network: string): string {
  return 'tscni-bandwidth:' + digestHex('sha256', network).slice(0, 16);
}

const LATENCY = '25ms';
const tbf = (dev: string, b: Bucket) =>
  batchLine('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', `${b.rate}bit`, 'burst', `${Math.floor(b.burst / 8)}b`, 'latency', LATENCY);

export interface BandwidthPlan {
  /** `ip -batch` lines (host namespace): the ifb device. */
  ip: string[];
  /** `tc -batch` lines (host namespace): qdiscs and the redirect filter. */
  tc: string[];
}

/** Shaping for one container: tbf on the host veth; egress redirected from its ingress to an ifb. */
export function planAdd(limits: Limits, hostIf: string, ifb: string, alias: string, mtu: number): BandwidthPlan {
  const ip: string[] = [];
  const tc: string[] = [];
  if (limits.ingress) tc.push(tbf(hostIf, limits.ingress));
  if (limits.egress) {
    ip.push(batchLine('link', 'add', ifb, 'mtu', mtu, 'type', 'ifb'), batchLine('link', 'set', 'dev', ifb, 'alias', alias, 'up'));
    tc.push(
      batchLine('qdisc', 'add', 'dev', hostIf, 'handle', 'ffff:', 'ingress'),
      batchLine('filter', 'add', 'dev', hostIf, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb),
      tbf(ifb, limits.egress),
    );
  }
  return { ip, tc };
}

/** The inverse, for undo and DEL: each line may fail harmlessly when already gone (run with -force). */
export function planDel(hostIf: string | undefined, ifb: string): BandwidthPlan {
  return {
    ip: [batchLine('link', 'del', 'dev', ifb)],
    tc: hostIf ? [batchLine('qdisc', 'del', 'dev', hostIf, 'root', 'handle', '1:'), batchLine('qdisc', 'del', 'dev', hostIf, 'handle', 'ffff:', 'ingress')] : [],
  };
}

/**
 * Why host interface `host` is not the veth peer of the container's `ctr` (pure), or undefined when it
 * is: both veths, each in another namespace than its peer (link_netnsid), each naming the other's
 * ifindex as its peer's.
 */
export function vethPeerProblem(host: IpLink, ctr: IpLink): string | undefined {
  if (host.linkinfo?.info_kind !== 'veth') return `${host.ifname} is not a veth`;
  if (ctr.linkinfo?.info_kind !== 'veth') return `container interface ${ctr.ifname} is not a veth`;
  if (host.link_netnsid === undefined || ctr.link_netnsid === undefined) return `${host.ifname} and ${ctr.ifname}: a peer is in the same namespace`;
  if (host.link_index !== ctr.ifindex || ctr.link_index !== host.ifindex) {
    return `${host.ifname} (ifindex ${host.ifindex}, peer ${host.link_index ?? '-'}) is not the peer of ${ctr.ifname} (ifindex ${ctr.ifindex}, peer ${ctr.link_index ?? '-'})`;
  }
  return undefined;
}
