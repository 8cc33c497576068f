import type { Exec } from '../../lib/exec.ts';
import type { Family } from '../../lib/net/ip.ts';
import { iptablesRestore, iptablesSave, quoteComment, restoreScript, type SavedTable } from '../../lib/netfilter/iptables.ts';

/**
 * `ipMasq` for the overlay is node-wide, as flannel does it: traffic from this node's pods to
 * outside the cluster network is masqueraded; pod-to-pod traffic across nodes keeps its source.
 * (The bridge's per-pod ipMasq would masquerade everything outside the node's own subnet.)
 * The same chain in iptables and ip6tables, one per family of the cluster networks.
 */

/** One family's rules: this node's subnet and its cluster network. */
export interface MasqFamily {
  family: Family;
  subnet: string;
  network: string;
}

export const nodeMasqChain = (device: string) => `TSCNI-VXLAN-${device}`;
const comment = (device: string) => `tscni vxlan ${device}`;

function desired(device: string, subnet: string, network: string, family: Family) {
  const chain = nodeMasqChain(device);
  return {
    jump: `-s ${subnet} -m comment --comment ${quoteComment(comment(device))} -j ${chain}`,
    rules: [`-d ${network} -j RETURN`, `-d ${family === 4 ? '224.0.0.0/4' : 'ff00::/8'} -j RETURN`, '-j MASQUERADE'],
  };
}

const ours = (saved: SavedTable, device: string) => saved.rules.filter((r) => r.chain === 'POSTROUTING' && r.spec.includes(`-j ${nodeMasqChain(device)}`));

/** The restore script that makes the nat table match, or '' when it already does (pure). */
export function planMasq(saved: SavedTable, device: string, subnet: string, network: string, family: Family = 4): string {
  const chain = nodeMasqChain(device);
  const want = desired(device, subnet, network, family);
  const jumps = ours(saved, device);
  const rules = saved.rules.filter((r) => r.chain === chain).map((r) => r.spec);
  const chainOk = saved.chains.includes(chain) && rules.join('\n') === want.rules.join('\n');
  const jumpOk = jumps.length === 1 && jumps[0]!.spec === want.jump;
  if (chainOk && jumpOk) return '';
  return restoreScript('nat', [
    `:${chain} - [0:0]`,
    `-F ${chain}`,
    ...want.rules.map((r) => `-A ${chain} ${r}`),
    ...jumps.map((j) => `-D POSTROUTING ${j.spec}`),
    `-A POSTROUTING ${want.jump}`,
  ]);
}

/** Ensures each given family's rules, side by side (teardown removes both families'). */
export async function ensureMasq(exec: Exec, device: string, families: readonly MasqFamily[]): Promise<void> {
  await Promise.all(families.map(async (f) => iptablesRestore(exec, f.family, planMasq(await iptablesSave(exec, f.family, 'nat'), device, f.subnet, f.network, f.family))));
}

export async function removeMasq(exec: Exec, device: string): Promise<void> {
  await Promise.all([removeMasqFamily(exec, device, 4), removeMasqFamily(exec, device, 6)]);
}

async function removeMasqFamily(exec: Exec, device: string, family: Family): Promise<void> {
  const saved = await iptablesSave(exec, family, 'nat');
  const chain = nodeMasqChain(device);
  if (!saved.chains.includes(chain)) return;
  await iptablesRestore(exec, family, restoreScript('nat', [...ours(saved, device).map((j) => `-D POSTROUTING ${j.spec}`), `-F ${chain}`, `-X ${chain}`]));
}
