import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { attachmentHash, networkHash } from '../../lib/digest.ts';
import { nftComment, type NftObjects } from '../../lib/netfilter/nft.ts';
import type { Portmap } from './conf.ts';

export const NFT_TABLE = 'tscni_portmap';
const T = `inet ${NFT_TABLE}`;
const JUMP_TAG = 'tscni-portmap jump';

const attachmentTag = (net: string, containerId: string) => `tscni-portmap ${networkHash(net)} ${attachmentHash(net, containerId)}`;

/** What a rule's comment says: whose it is and, for DNAT rules, which host port it forwards. */
interface Tag {
  net: string;
  attachment: string;
  protocol?: string;
  port?: number;
  hostIP?: string;
}

function parseTag(comment: string | undefined): Tag | undefined {
  const m = /^tscni-portmap ([0-9a-f]{12}) ([0-9a-f]{24})(?: (tcp|udp|sctp) (\d+) (\S+))?$/.exec(comment ?? '');
  if (!m) return undefined;
  return { net: m[1]!, attachment: m[2]!, ...(m[3] ? { protocol: m[3], port: Number(m[4]), ...(m[5] !== 'any' ? { hostIP: m[5] } : {}) } : {}) };
}

/** One nft transaction adding the table, chains and jumps (idempotent) and the attachment's rules (pure). */
export function planNftAdd(current: NftObjects, net: string, containerId: string, p: Portmap): string {
  const mine = attachmentTag(net, containerId);
  const own = attachmentHash(net, containerId);
  for (const r of current.rules) {
    const tag = parseTag(r.comment);
    if (!tag?.protocol || tag.attachment === own) continue;
    for (const f of p.families) {
      const clash = f.mappings.find((m) => m.protocol === tag.protocol && m.hostPort === tag.port && (!m.hostIP || !tag.hostIP || m.hostIP === tag.hostIP));
      if (clash) throw new CniError(ErrorCode.invalidConfig, `host port ${clash.hostPort}/${clash.protocol}${clash.hostIP ? ` on ${clash.hostIP}` : ''} is already mapped`, `by another container (nft rule handle ${r.handle} in table ${T})`);
    }
  }
  const lines = [
    `add table ${T}`,
    `add chain ${T} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${T} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${T} hostports`,
    // The hook chains hold only our jumps: flush and re-add, so a concurrent DEL cannot leave them out.
    ...['prerouting', 'output'].flatMap((c) => [`flush chain ${T} ${c}`, `add rule ${T} ${c} fib daddr type local jump hostports comment ${nftComment(JUMP_TAG)}`]),
    // A re-ADD replaces the attachment's rules: delete those present first, in the same transaction.
    ...planNftDel(current, (tag) => tag === own),
  ];
  for (const f of p.families) {
    const ip = f.family === 4 ? 'ip' : 'ip6';
    const to = f.family === 4 ? f.containerIp : `[${f.containerIp}]`;
    const cond = f.conditions.length ? `${f.conditions.join(' ')} ` : '';
    for (const m of f.mappings) {
      const tag = nftComment(`${mine} ${m.protocol} ${m.hostPort} ${m.hostIP ?? 'any'}`);
      const daddr = m.hostIP ? `${ip} daddr ${m.hostIP} ` : '';
      lines.push(`add rule ${T} hostports ${cond}${daddr}meta l4proto ${m.protocol} th dport ${m.hostPort} dnat ${ip} to ${to}:${m.containerPort} comment ${tag}`);
      if (!p.snat) continue;
      const sources = p.masqAll ? '' : `${ip} saddr { ${[f.subnet, ...(f.family === 4 ? ['127.0.0.1'] : [])].join(', ')} } `;
      lines.push(`add rule ${T} postrouting ${sources}${ip} daddr ${f.containerIp} meta l4proto ${m.protocol} th dport ${m.containerPort} ct status dnat masquerade comment ${nftComment(mine)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * `delete rule` lines for rules whose attachment hash `doomed` selects, and the whole table once no
 * attachment is left (pure). Chains are deleted one by one, never with the table's rules in them: a
 * rule another writer added meanwhile makes `delete chain` fail the transaction instead of vanishing.
 */
export function planNftDel(current: NftObjects, doomed: (attachment: string) => boolean, net?: string): string[] {
  const netHash = net === undefined ? undefined : networkHash(net);
  const ours = current.rules.filter((r) => r.table === NFT_TABLE && r.family === 'inet');
  const selected = (r: NftObjects['rules'][number]) => {
    const tag = parseTag(r.comment);
    return tag !== undefined && (netHash === undefined || tag.net === netHash) && doomed(tag.attachment);
  };
  const lines = ours.filter(selected).map((r) => `delete rule ${T} ${r.chain} handle ${Number(r.handle)}`);
  const tableExists = current.tables.some((t) => t.name === NFT_TABLE && t.family === 'inet');
  if (tableExists && ours.every((r) => selected(r) || r.comment === JUMP_TAG)) {
    const chains = current.chains.filter((c) => c.table === NFT_TABLE && c.family === 'inet').map((c) => c.name);
    const order = [...chains.filter((c) => c === 'prerouting' || c === 'output'), ...chains.filter((c) => c !== 'prerouting' && c !== 'output')];
    lines.push(...['prerouting', 'output'].filter((c) => chains.includes(c)).map((c) => `flush chain ${T} ${c}`), ...order.map((c) => `delete chain ${T} ${c}`), `delete table ${T}`);
  }
  return lines;
}

/** Whether the attachment has a DNAT rule for every mapping (CHECK). */
export function nftMissing(current: NftObjects, net: string, containerId: string, p: Portmap): string[] {
  const mine = attachmentTag(net, containerId);
  const have = new Set(current.rules.map((r) => r.comment));
  return p.families.flatMap((f) => f.mappings.map((m) => `${mine} ${m.protocol} ${m.hostPort} ${m.hostIP ?? 'any'}`)).filter((t) => !have.has(t));
}
