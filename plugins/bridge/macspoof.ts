import type { Exec } from '../../lib/exec.ts';
import { nftApply, nftComment, nftList } from '../../lib/netfilter/nft.ts';
import { hashTag, hashTagAttachment, selectsHash, type AttachmentSelector } from '../../lib/netfilter/tags.ts';

/** macspoofchk: frames entering the bridge from a container's port must carry its MAC. */
const TABLE = 'tscni_macspoofchk';
const CHAIN = 'prerouting';

/** Attachments are keyed `containerId-ifname`, as the reference keys its spoof checker. */
export const spoofKey = (containerId: string, ifname: string) => `${containerId}-${ifname}`;
const TAG_KIND = 'tscni';

export function planMacSpoofChk(net: string, key: string, hostVeth: string, mac: string): string {
  return [
    `add table bridge ${TABLE}`,
    `add chain bridge ${TABLE} ${CHAIN} { type filter hook prerouting priority -300; policy accept; }`,
    `add rule bridge ${TABLE} ${CHAIN} iifname ${nftComment(hostVeth)} ether saddr != ${mac} drop comment ${nftComment(hashTag(TAG_KIND, net, key))}`,
  ].join('\n') + '\n';
}

export const addMacSpoofChk = (exec: Exec, net: string, key: string, hostVeth: string, mac: string) => nftApply(exec, planMacSpoofChk(net, key, hostVeth, mac));

/** Removes the selected attachments' rules (keys from spoofKey), found by tag; nothing found is success. */
export async function removeMacSpoofChk(exec: Exec, net: string, selector: AttachmentSelector): Promise<void> {
  const { rules } = await nftList(exec, ['chain', 'bridge', TABLE, CHAIN]);
  const wanted = selectsHash(net, selector);
  const lines = rules
    .filter((r) => {
      const hash = hashTagAttachment(r.comment, TAG_KIND, net);
      return hash !== undefined && wanted(hash);
    })
    .map((r) => `delete rule bridge ${TABLE} ${CHAIN} handle ${Number(r.handle)}`);
  await nftApply(exec, lines.join('\n'));
}
