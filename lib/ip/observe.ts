import type { Exec } from '../exec.ts';
import { ipArgv, linkGone, parseIpJson } from './ip.ts';
import type { IpLink } from './types.ts';

/**
 * One link with its details and addresses (`ip -d -json addr show dev NAME`), or undefined when
 * it does not exist. One spawn.
 */
export async function observeLink(exec: Exec, name: string, netns?: string): Promise<IpLink | undefined> {
  const out = await exec.runAsync([...ipArgv(netns), '-d', '-json', 'addr', 'show', 'dev', name], { allowFailure: true });
  if (out.status !== 0) {
    if (linkGone(out.stderr)) return undefined;
    throw new Error(`ip addr show dev ${name}: ${out.stderr.trim() || `exit ${out.status}`}`);
  }
  return parseIpJson<IpLink[]>(out.stdout)[0];
}
