import { attachmentHash } from '../digest.ts';
import type { Exec } from '../exec.ts';
import { formatCidr, formatIp, network, type Cidr, type Family } from '../net/ip.ts';
import { iptablesRestore, iptablesSave, quoteComment, restoreScript, savedComment, type SavedTable } from './iptables.ts';
import { nftApply, nftComment, nftList, type NftObjects } from './nft.ts';
import { hashTag, hashTagAttachment, parseReferenceTag, referenceTag, selectsHash, type AttachmentSelector } from './tags.ts';

/**
 * Source NAT for a container's addresses, one set of rules per attachment, each tagged so DEL and GC
 * find them without recomputing from a prevResult. The iptables shape is the reference plugins'
 * (chain `CNI-<hash>`, comment `name: "NET" id: "ID"`), so rules either made are removed by both.
 */
export type MasqBackend = 'iptables' | 'nftables';

export const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };
export const NFT_TABLE = 'tscni_masquerade';
export const NFT_CHAIN = 'postrouting';

export const attachmentMasqChain = (net: string, containerId: string): string => `CNI-${attachmentHash(net, containerId)}`;
const NFT_TAG_KIND = 'tscni';

const subnetOf = (c: Cidr) => formatCidr({ ip: network(c), prefix: c.prefix });

/** An attachment's chain and the comment match on each of its rules. */
function iptablesTag(net: string, containerId: string) {
  return { chain: attachmentMasqChain(net, containerId), comment: `-m comment --comment ${quoteComment(referenceTag('masq', net, containerId))}` };
}

/** The POSTROUTING jumps of one family's addresses, without `-A`/`-D`: ADD appends them, a known-address DEL deletes them. */
function postroutingJumps(net: string, containerId: string, ips: readonly Cidr[]): string[] {
  const { chain, comment } = iptablesTag(net, containerId);
  return ips.map((c) => `POSTROUTING -s ${formatIp(c.ip)}/${c.ip.family === 4 ? 32 : 128} ${comment} -j ${chain}`);
}

/** iptables-restore lines for one family's addresses of an attachment (pure). */
export function planIptablesMasq(net: string, containerId: string, ips: readonly Cidr[]): string[] {
  if (ips.length === 0) return [];
  const { chain, comment } = iptablesTag(net, containerId);
  return [
    `:${chain} - [0:0]`,
    ...ips.map((c) => `-A ${chain} -d ${subnetOf(c)} ${comment} -j ACCEPT`),
    `-A ${chain} ! -d ${MULTICAST[ips[0]!.ip.family]} ${comment} -j MASQUERADE`,
    ...postroutingJumps(net, containerId, ips).map((j) => `-A ${j}`),
  ];
}

/** One nft script adding the attachment's rules, creating table and chain if missing (pure). */
export function planNftMasq(net: string, containerId: string, ips: readonly Cidr[]): string {
  if (ips.length === 0) return '';
  const tag = nftComment(hashTag(NFT_TAG_KIND, net, containerId));
  const lines = [
    `add table inet ${NFT_TABLE}`,
    `add chain inet ${NFT_TABLE} ${NFT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
    ...ips.map((c) => {
      const f = c.ip.family === 4 ? 'ip' : 'ip6';
      return `add rule inet ${NFT_TABLE} ${NFT_CHAIN} ${f} saddr ${formatIp(c.ip)} ${f} daddr != ${subnetOf(c)} ${f} daddr != ${MULTICAST[c.ip.family]} masquerade comment ${tag}`;
    }),
  ];
  return lines.join('\n') + '\n';
}

/** Adds masquerading for an attachment's addresses: one spawn per family (iptables) or one in all (nft). */
export async function addMasquerade(exec: Exec, backend: MasqBackend, net: string, containerId: string, ips: readonly Cidr[]): Promise<void> {
  if (backend === 'nftables') return nftApply(exec, planNftMasq(net, containerId, ips));
  for (const family of [4, 6] as const) {
    const mine = ips.filter((c) => c.ip.family === family);
    await iptablesRestore(exec, family, restoreScript('nat', planIptablesMasq(net, containerId, mine)));
  }
}

/** Restore lines removing the selected attachments' rules and chains from a saved nat table (pure). */
export function planIptablesUnmasq(table: SavedTable, net: string, selector: AttachmentSelector): string[] {
  const wanted = selectsHash(net, selector);
  const chainHash = (chain: string) => (/^CNI-[0-9a-f]{24}$/.test(chain) ? chain.slice(4) : undefined);
  const doomed = new Set<string>();
  const deletes: string[] = [];
  for (const rule of table.rules) {
    const tag = parseReferenceTag(savedComment(rule.spec));
    if (tag?.kind !== 'masq' || tag.network !== net) continue;
    const own = chainHash(rule.chain);
    if (own !== undefined) {
      if (wanted(own)) doomed.add(rule.chain);
      continue;
    }
    const target = / -j (CNI-[0-9a-f]{24})$/.exec(rule.spec)?.[1];
    const hash = target && chainHash(target);
    if (hash && wanted(hash)) {
      deletes.push(`-D ${rule.chain} ${rule.spec}`);
      doomed.add(target);
    }
  }
  if ('only' in selector) {
    for (const id of selector.only) if (table.chains.includes(attachmentMasqChain(net, id))) doomed.add(attachmentMasqChain(net, id));
  }
  const chains = [...doomed].filter((c) => table.chains.includes(c));
  return [...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`)];
}

/** An nft script deleting the selected attachments' rules by handle (pure). */
export function planNftUnmasq(objects: NftObjects, net: string, selector: AttachmentSelector): string {
  const wanted = selectsHash(net, selector);
  const lines = objects.rules
    .filter((r) => {
      const hash = r.table === NFT_TABLE && r.chain === NFT_CHAIN ? hashTagAttachment(r.comment, NFT_TAG_KIND, net) : undefined;
      return hash !== undefined && wanted(hash);
    })
    .map((r) => `delete rule inet ${NFT_TABLE} ${NFT_CHAIN} handle ${Number(r.handle)}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** Restore lines deleting one attachment's rules for addresses known from its result (pure). */
export function planIptablesUnmasqKnown(net: string, containerId: string, ips: readonly Cidr[]): string[] {
  if (ips.length === 0) return [];
  const chain = attachmentMasqChain(net, containerId);
  return [...postroutingJumps(net, containerId, ips).map((j) => `-D ${j}`), `-F ${chain}`, `-X ${chain}`];
}

/**
 * Removes one attachment's masquerade when its addresses are known (DEL with a prevResult): per
 * family, one restore that deletes exactly what ADD made, with no read first. The restore is one
 * transaction: when any of it no longer matches (already removed, or changed by hand), nothing
 * applied, and the rules are found by tag as removeMasquerade does.
 */
export async function removeMasqueradeOf(exec: Exec, backend: MasqBackend, net: string, containerId: string, ips: readonly Cidr[]): Promise<void> {
  if (backend === 'nftables') return removeMasquerade(exec, backend, net, { only: [containerId] });
  for (const family of [4, 6] as const) {
    const mine = ips.filter((c) => c.ip.family === family);
    if (mine.length === 0) continue;
    try {
      await iptablesRestore(exec, family, restoreScript('nat', planIptablesUnmasqKnown(net, containerId, mine)));
    } catch {
      await removeMasquerade(exec, backend, net, { only: [containerId] }, [family]);
    }
  }
}

/**
 * Removes the selected attachments' masquerade rules, found by their tag. Nothing found is
 * success; a read costs one spawn per family, a change one more.
 */
export async function removeMasquerade(exec: Exec, backend: MasqBackend, net: string, selector: AttachmentSelector, families: readonly Family[] = [4, 6]): Promise<void> {
  if (backend === 'nftables') {
    const objects = await nftList(exec, ['chain', 'inet', NFT_TABLE, NFT_CHAIN]);
    return nftApply(exec, planNftUnmasq(objects, net, selector));
  }
  for (const family of families) {
    const lines = planIptablesUnmasq(await iptablesSave(exec, family, 'nat'), net, selector);
    await iptablesRestore(exec, family, restoreScript('nat', lines));
  }
}
