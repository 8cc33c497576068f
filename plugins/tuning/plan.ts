import { batchLine } from '../../lib/ip/ip.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import type { Tuning } from './conf.ts';

/** The interface attributes tuning may change, as they were before ADD: restored on DEL. */
export interface LinkAttrs {
  mac?: string;
  mtu?: number;
  promisc?: boolean;
  allmulti?: boolean;
  txQLen?: number;
}

/** What DEL needs to put back, saved before ADD changes anything. */
export interface SavedState {
  network: string;
  containerId: string;
  ifname: string;
  link: LinkAttrs;
  /** sysctl path → original value. */
  sysctl: Record<string, string>;
}

export type ObservedLink = Pick<IpLink, 'address' | 'mtu' | 'flags'> & { txqlen?: number };

/** Every attribute tuning can change, as the link has it now. */
function currentAttrs(link: ObservedLink): Required<Omit<LinkAttrs, 'mac' | 'txQLen'>> & Pick<LinkAttrs, 'mac' | 'txQLen'> {
  return {
    ...(link.address ? { mac: link.address.toLowerCase() } : {}),
    mtu: link.mtu,
    promisc: link.flags.includes('PROMISC'),
    allmulti: link.flags.includes('ALLMULTI'),
    ...(link.txqlen !== undefined ? { txQLen: link.txqlen } : {}),
  };
}

/** The current values of exactly the attributes this tuning will change. */
export function originalAttrs(t: Tuning, link: ObservedLink): LinkAttrs {
  const now = currentAttrs(link);
  return {
    ...(t.mac && now.mac ? { mac: now.mac } : {}),
    ...(t.mtu ? { mtu: now.mtu } : {}),
    ...(t.promisc ? { promisc: now.promisc } : {}),
    ...(t.allmulti !== undefined ? { allmulti: now.allmulti } : {}),
    ...(t.txQLen !== undefined && now.txQLen !== undefined ? { txQLen: now.txQLen } : {}),
  };
}

export function wantedAttrs(t: Tuning): LinkAttrs {
  return {
    ...(t.mac ? { mac: t.mac } : {}),
    ...(t.mtu ? { mtu: t.mtu } : {}),
    ...(t.promisc ? { promisc: true } : {}),
    ...(t.allmulti !== undefined ? { allmulti: t.allmulti } : {}),
    ...(t.txQLen !== undefined ? { txQLen: t.txQLen } : {}),
  };
}

/** `ip -batch` lines that set `attrs` on `ifname` (inside the container namespace). */
export function planLinkSet(ifname: string, attrs: LinkAttrs): string[] {
  const lines: string[] = [];
  if (attrs.mtu !== undefined) lines.push(batchLine('link', 'set', 'dev', ifname, 'mtu', attrs.mtu));
  if (attrs.mac !== undefined) lines.push(batchLine('link', 'set', 'dev', ifname, 'address', attrs.mac));
  if (attrs.promisc !== undefined) lines.push(batchLine('link', 'set', 'dev', ifname, 'promisc', attrs.promisc ? 'on' : 'off'));
  if (attrs.allmulti !== undefined) lines.push(batchLine('link', 'set', 'dev', ifname, 'allmulticast', attrs.allmulti ? 'on' : 'off'));
  if (attrs.txQLen !== undefined) lines.push(batchLine('link', 'set', 'dev', ifname, 'txqueuelen', attrs.txQLen));
  return lines;
}

/** Differences between what tuning set and what the link has now, for CHECK; [] when all match. */
export function diffLink(want: LinkAttrs, link: ObservedLink, ifname: string): string[] {
  const have = currentAttrs(link);
  const out: string[] = [];
  const cmp = (what: string, w: unknown, h: unknown) => {
    if (w !== undefined && w !== h) out.push(`${ifname} ${what} is ${String(h)}, configured ${String(w)}`);
  };
  cmp('mac', want.mac, have.mac);
  cmp('mtu', want.mtu, have.mtu);
  // As the reference: promisc false in the config means the link must not be promiscuous.
  cmp('promisc', want.promisc ?? false, have.promisc);
  cmp('allmulti', want.allmulti, have.allmulti);
  cmp('txQLen', want.txQLen, have.txQLen);
  return out;
}
