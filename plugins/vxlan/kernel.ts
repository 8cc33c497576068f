import { readFileSync, writeFileSync } from 'node:fs';
import type { Exec } from '../../lib/exec.ts';
import { ProcessError } from '../../lib/exec.ts';
import { ipBatch, parseIpJson } from '../../lib/ip/ip.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import type { FdbEntry, IpNeigh, IpRoute, PeerState } from './reconcile.ts';

/** The node's network state the overlay decides from: read in one `ip` and one `bridge` spawn. */
export interface NodeObservation extends PeerState {
  links: IpLink[];
}

export async function observeNode(exec: Exec, device: string): Promise<NodeObservation> {
  // three reads in parallel: with 1,000 peers each dump costs a few ms of ip/bridge printing JSON
  const [ipOut, routeOut, fdbOut] = await Promise.all([
    // -d: addr show then carries each link's vxlan details
    exec.runAsync(['ip', '-d', '-json', '-batch', '-'], { input: 'addr show\nneigh show\n' }),
    exec.runAsync(['ip', '-json', 'route', 'show']),
    exec.runAsync(['bridge', '-json', 'fdb', 'show', 'dev', device], { allowFailure: true }),
  ]);
  const [links = [], neighs = []] = parseIpJson<[IpLink[], IpNeigh[]]>(ipOut.stdout);
  const routes = parseIpJson<IpRoute[]>(routeOut.stdout);
  const fdb = fdbOut.status === 0 ? parseIpJson<FdbEntry[]>(fdbOut.stdout) : [];
  return { links, routes, neighs, fdb };
}

/** One `ip -batch` then one `bridge -batch`: the routes/neighbours before the FDB they lead to. */
export async function applyNode(exec: Exec, ipLines: readonly string[], bridgeLines: readonly string[]): Promise<void> {
  if (ipLines.length) await ipBatch(exec, ipLines);
  if (bridgeLines.length) {
    const out = await exec.runAsync(['bridge', '-batch', '-'], { input: bridgeLines.join('\n') + '\n', allowFailure: true });
    if (out.status !== 0) {
      const m = /Command failed -:(\d+)/.exec(out.stderr);
      const line = m ? bridgeLines[Number(m[1]) - 1] : undefined;
      if (line) throw new Error(`bridge: "${line}": ${out.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join('; ')}`);
      throw new ProcessError(out);
    }
  }
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** Pods on other nodes are reached through this node: it must forward. Returns whether it changed. */
export function ensureIpForward(): boolean {
  if (readFileSync(IP_FORWARD, 'utf8').trim() === '1') return false;
  writeFileSync(IP_FORWARD, '1');
  return true;
}

export const ipForwardOn = () => readFileSync(IP_FORWARD, 'utf8').trim() === '1';

/** Works around the VXLAN checksum bug of some kernels; off by default, it also disables segmentation offload. */
export async function disableTxChecksum(exec: Exec, device: string): Promise<void> {
  await exec.runAsync(['ethtool', '-K', device, 'tx-checksum-ip-generic', 'off']);
}
