import { attachmentHash, networkHash } from '../digest.ts';

/**
 * The tags that mark an attachment's rules, so DEL, GC and `tscni doctor` find them by tag rather
 * than by recomputing from a prevResult. Every writer and reader of a tag goes through here.
 *
 * Two shapes:
 * - the reference plugins' iptables comments, which ours keep so either removes the other's rules:
 *   bridge's masquerade `name: "NET" id: "ID"`, portmap's `dnat name: "NET" id: "ID"` (Go's %q;
 *   JSON quoting is the same for printable names);
 * - ours where no reference shape exists: `KIND NETHASH ATTACHMENTHASH` (nft masquerade and
 *   macspoofchk `tscni`, firewall `tscni-firewall`), fixed-alphabet text that nft comments accept.
 */
export type ReferenceTagKind = 'masq' | 'dnat';

export interface ReferenceTag {
  kind: ReferenceTagKind;
  network: string;
  containerId: string;
}

export const referenceTag = (kind: ReferenceTagKind, net: string, containerId: string): string =>
  `${kind === 'dnat' ? 'dnat ' : ''}name: ${JSON.stringify(net)} id: ${JSON.stringify(containerId)}`;

const QUOTED = String.raw`"(?:[^"\\]|\\.)*"`;
const REFERENCE = new RegExp(`^(dnat )?name: (${QUOTED}) id: (${QUOTED})$`);

/** A comment's reference tag (already unescaped from iptables-save, see `savedComment`), if it is one. */
export function parseReferenceTag(comment: string | undefined): ReferenceTag | undefined {
  const m = REFERENCE.exec(comment ?? '');
  if (!m) return undefined;
  try {
    return { kind: m[1] ? 'dnat' : 'masq', network: JSON.parse(m[2]!) as string, containerId: JSON.parse(m[3]!) as string };
  } catch {
    return undefined; // a quoting JSON cannot read (Go's \x escapes) is not a tag we can judge
  }
}

/** Our tag: `KIND NETHASH ATTACHMENTHASH`, the attachment keyed by container ID (or another per-attachment key). */
export const hashTag = (kind: string, net: string, key: string): string => `${kind} ${networkHash(net)} ${attachmentHash(net, key)}`;

/** The attachment hash of a `hashTag` of this kind and network, if the comment is one. */
export function hashTagAttachment(comment: string | undefined, kind: string, net: string): string | undefined {
  const prefix = `${kind} ${networkHash(net)} `;
  return comment?.startsWith(prefix) ? comment.slice(prefix.length) : undefined;
}

/** Which attachments of a network to act on: these container IDs (keys), or all but these (GC). */
export type AttachmentSelector = { only: readonly string[] } | { allBut: readonly string[] };

/** The selector as a test on attachment hashes (as tags and chain names carry them). */
export function selectsHash(net: string, selector: AttachmentSelector): (hash: string) => boolean {
  const ids = new Set(('only' in selector ? selector.only : selector.allBut).map((id) => attachmentHash(net, id)));
  return 'only' in selector ? (h) => ids.has(h) : (h) => !ids.has(h);
}
