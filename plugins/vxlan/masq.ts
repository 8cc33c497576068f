import type { Exec } from '../../lib/exec.ts';
import { iptablesRestore, iptablesSave, quoteComment, restoreScript, type SavedTable } from '../../lib/netfilter/iptables.ts';

/**
 * `ipMasq` for the overlay is node-wide, as flannel does it: traffic from this node's pods to
 * outside the cluster network is masqueraded; pod-to-pod traffic across nodes keeps its source.
 * (The bridge's per-pod ipMasq would masquerade everything outside the node's own subnet.)
 */

export const nodeMasqChain = (device: string) => `TSCNI-VXLAN-${device}`;
const comment = (device: string) => `tscni vxlan ${device}`;

function desired(device: string, subnet: string, network: string) {
  const chain = nodeMasqChain(device);
  return {
    jump: `-s ${subnet} -m comment --comment ${quoteComment(comment(device))} -j ${chain}`,
    rules: [`-d ${network} -j RETURN`, '-d 224.0.0.0/4 -j RETURN', '-j MASQUERADE'],
  };
}

const ours = (saved: SavedTable, device: string) => saved.rules.filter((r) => r.chain === 'POSTROUTING' && r.spec.includes(`-j ${nodeMasqChain(device)}`));

/** The restore script that makes the nat table match, or '' when it already does (pure). */
export function planMasq(saved: SavedTable, device: string, subnet: string, network: string): string {
  const chain = nodeMasqChain(device);
  const want = desired(device, subnet, network);
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

export async function ensureMasq(exec: Exec, device: string, subnet: string, network: string): Promise<boolean> {
  const script = planMasq(await iptablesSave(exec, 4, 'nat'), device, subnet, network);
  await iptablesRestore(exec, 4, script);
  return script !== '';
}

export async function removeMasq(exec: Exec, device: string): Promise<void> {
  const saved = await iptablesSave(exec, 4, 'nat');
  const chain = nodeMasqChain(device);
  if (!saved.chains.includes(chain)) return;
  await iptablesRestore(exec, 4, restoreScript('nat', [...ours(saved, device).map((j) => `-D POSTROUTING ${j.spec}`), `-F ${chain}`, `-X ${chain}`]));
}
