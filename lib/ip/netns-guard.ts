import { statSync } from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';

/**
 * A plugin configures container namespaces, never the one it runs in: CNI_NETNS=/proc/self/ns/net
 * (or any path to the host's namespace) from a confused runtime would otherwise get an eth0, an
 * address and a default route, or lose its `lo`. Every way into a namespace in lib/ip goes through
 * here, so no plugin can miss the check.
 */

let own: string | undefined;

const identity = (path: string): string => {
  const st = statSync(path);
  return `${st.dev}:${st.ino}`;
};

/**
 * Whether `path` is this process's own network namespace (same device and inode as ours). Taken
 * from /proc/thread-self: JS runs on the main thread, and the first call comes before any setns.
 * A path that cannot be read is not ours (the caller reports it as missing).
 */
export function isOwnNetns(path: string): boolean {
  own ??= identity('/proc/thread-self/ns/net');
  try {
    return identity(path) === own;
  } catch {
    return false;
  }
}

/** Code 4 when `path` is our own namespace; otherwise nothing. */
export function refuseOwnNetns(path: string): void {
  if (isOwnNetns(path)) {
    throw new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${path} is the plugin's own network namespace, not a container's`, 'refusing to configure the host namespace: the runtime must pass the container namespace');
  }
}

/** argv prefix that runs a command inside the container namespace at `path` (refused if it is ours). */
export function nsenterNet(path: string): string[] {
  refuseOwnNetns(path);
  return ['nsenter', `--net=${path}`];
}
