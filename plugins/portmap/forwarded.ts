import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { attachmentHash } from '../../lib/digest.ts';
import { writeFileAtomic } from '../../lib/store/atomic-file.ts';

/**
 * Which attachments have ports forwarded: a file per attachment (named by its hash) in `dir`, on
 * tmpfs by default, so it goes at reboot with the rules themselves. It is written before the first
 * rule and removed after the last, so a DEL that lists no mappings (podman and cnitool send none for
 * a pod without ports) and finds no file has nothing to look for in iptables or nftables.
 */
export interface Forwarded {
  network: string;
  containerId: string;
}

/** A mark's name: the attachment hash (anything else, e.g. a killed writer's temp file, is not a mark). */
const ATTACHMENT = /^[0-9a-f]{24}$/;
const file = (dir: string, f: Forwarded) => join(dir, attachmentHash(f.network, f.containerId));

export const markForwarded = (dir: string, f: Forwarded): void => writeFileAtomic(file(dir, f), JSON.stringify(f));

export const isForwarded = (dir: string, f: Forwarded): boolean => existsSync(file(dir, f));

export function unmarkForwarded(dir: string, f: Forwarded): void {
  rmSync(file(dir, f), { force: true });
}

/** Every marked attachment of `network` (for GC); files that do not parse are skipped. */
export function forwardedOf(dir: string, network: string): Forwarded[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => ATTACHMENT.test(name)).flatMap((name) => {
    try {
      const f = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<Forwarded>;
      return f.network === network && typeof f.containerId === 'string' ? [{ network, containerId: f.containerId }] : [];
    } catch {
      return [];
    }
  });
}
