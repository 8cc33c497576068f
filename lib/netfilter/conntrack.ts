import type { Exec, ProcessOutput } from '../exec.ts';
import { parseIp } from '../net/ip.ts';

/**
 * Deletes the UDP conntrack entries to one destination port: one `conntrack -D` spawn (it takes one
 * port). Exit 1 means nothing matched, which is fine, so a process that ran is never an error; a
 * missing `conntrack` binary throws the ProcessError marked `notStarted`.
 */
export async function deleteUdpConntrack(exec: Exec, port: number): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`refusing conntrack port ${JSON.stringify(port)}`);
  await exec.runAsync(['conntrack', '-D', '-p', 'udp', '--orig-port-dst', String(port)], { allowFailure: true });
}

/**
 * Deletes the conntrack entries whose original source (`-s`) or destination (`-d`) is `ip`: one
 * spawn. Exit 1 with "0 flow entries" means nothing matched; the caller reads the output.
 */
export function deleteAddressConntrack(exec: Exec, direction: '-s' | '-d', ip: string): Promise<ProcessOutput> {
  if (!parseIp(ip)) throw new Error(`refusing conntrack address ${JSON.stringify(ip)}`);
  return exec.runAsync(['conntrack', '-D', direction, ip], { allowFailure: true });
}
