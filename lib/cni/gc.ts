import { CniError, ErrorCode } from './errors.ts';

/** One attachment the runtime still holds: GC must leave what it owns alone. */
export interface GcAttachment {
  containerID: string;
  ifname: string;
}

/** The spec's name first; libcni also sends the second (a name from a spec draft) with the same value. */
const KEYS = ['cni.dev/valid-attachments', 'cni.dev/attachments'] as const;

/**
 * The attachments GC must keep. Refuses (code 7) a config without the list: an absent list read as
 * "nothing is valid" would sweep every container's addresses and rules. The core checks it before a
 * plugin's GC runs, so no plugin can sweep on a missing list.
 */
export function parseValidAttachments(conf: Record<string, unknown>): GcAttachment[] {
  const key = KEYS.find((k) => conf[k] !== undefined && conf[k] !== null);
  if (!key) throw new CniError(ErrorCode.invalidConfig, `GC needs ${KEYS[0]} in the config`, 'without the list of valid attachments GC would remove every attachment');
  const list = conf[key];
  const bad = () => new CniError(ErrorCode.invalidConfig, `invalid ${key}: expected a list of {"containerID", "ifname"}`);
  if (!Array.isArray(list)) throw bad();
  return list.map((a: unknown) => {
    const { containerID, ifname } = (a ?? {}) as { containerID?: unknown; ifname?: unknown };
    if (typeof containerID !== 'string' || typeof ifname !== 'string') throw bad();
    return { containerID, ifname };
  });
}
