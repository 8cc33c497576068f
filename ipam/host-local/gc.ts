import { CniError, ErrorCode } from '../../lib/cni/errors.ts';

const KEYS = ['cni.dev/valid-attachments', 'cni.dev/attachments'] as const;

/**
 * The attachments GC must keep, as `containerID\nifname` keys. Refuses a config without the list:
 * an absent list must not be read as "nothing is valid" and free every address.
 */
export function parseValidAttachments(conf: Record<string, unknown>): Set<string> {
  const key = KEYS.find((k) => conf[k] !== undefined && conf[k] !== null);
  if (!key) throw new CniError(ErrorCode.invalidConfig, `GC needs ${KEYS[0]} in the config`);
  const list = conf[key];
  const bad = () => new CniError(ErrorCode.invalidConfig, `invalid ${key}: expected a list of {"containerID", "ifname"}`);
  if (!Array.isArray(list)) throw bad();
  return new Set(
    list.map((a: unknown) => {
      const { containerID, ifname } = (a ?? {}) as { containerID?: unknown; ifname?: unknown };
      if (typeof containerID !== 'string' || typeof ifname !== 'string') throw bad();
      return `${containerID}\n${ifname}`;
    }),
  );
}
