import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachmentHash } from '../../lib/digest.ts';

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

const file = (dir: string, f: Forwarded) => join(dir, attachmentHash(f.network, f.containerId));

/** Written atomically (temp + rename), readable by root only. */
export function markForwarded(dir: string, f: Forwarded): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = file(dir, f);
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(f), { mode: 0o600 });
  renameSync(tmp, target);
}

export function isForwarded(dir: string, f: Forwarded): boolean {
  try {
    readFileSync(file(dir, f));
    return true;
  } catch {
    return false;
  }
}

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
  return names.flatMap((name) => {
    try {
      const f = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<Forwarded>;
      return f.network === network && typeof f.containerId === 'string' ? [{ network, containerId: f.containerId }] : [];
    } catch {
      return [];
    }
  });
}
