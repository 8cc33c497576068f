import { sh } from './scope.ts';

/** `ip -json ARGS`, optionally inside a named netns. */
export function ipJson<T = any>(args: string[], netnsName?: string): T {
  const out = sh(['ip', ...(netnsName ? ['-n', netnsName] : []), '-json', ...args]);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Whether `ping -c1` from a namespace reaches an address (test-made namespaces only). */
export function pings(netnsName: string, address: string, extra: string[] = []): boolean {
  const argv = ['ip', 'netns', 'exec', netnsName, 'ping', '-c', '1', '-W', '2', ...extra, address];
  try {
    sh(argv);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes a shared nft table once no rule is left in it. Our plugins keep such tables (removing one
 * would race with a concurrent ADD); a test that may have created it tidies up with this.
 */
export function dropNftTableIfEmpty(family: string, table: string): void {
  let listed: { nftables?: { rule?: unknown }[] };
  try {
    listed = JSON.parse(sh(['nft', '-j', 'list', 'table', family, table]));
  } catch {
    return; // no such table
  }
  if (!(listed.nftables ?? []).some((o) => o.rule)) sh(['nft', 'delete', 'table', family, table]);
}
