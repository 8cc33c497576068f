import { writeFileSync } from 'node:fs';
import { validIfName } from '../../lib/cni/env.ts';
import type { Exec } from '../../lib/exec.ts';
import { ipJson } from '../../lib/ip/ip.ts';
import type { Mapping } from './conf.ts';

/**
 * DNAT of 127.0.0.1 to a container needs route_localnet on the host interface that routes to it
 * (as the reference, it is left on: other containers behind the same interface rely on it).
 */
export async function enableLocalnetRouting(exec: Exec, containerIp: string): Promise<void> {
  const [route] = await ipJson<{ dev?: string }[]>(exec, ['route', 'get', containerIp]);
  const dev = route?.dev;
  if (!dev || validIfName(dev) !== undefined || dev === 'lo') return;
  writeFileSync(`/proc/sys/net/ipv4/conf/${dev}/route_localnet`, '1');
}

/** Drops UDP conntrack entries for the host ports, so earlier flows do not bypass the new DNAT. */
export async function flushUdpConntrack(exec: Exec, mappings: readonly Mapping[]): Promise<void> {
  const ports = [...new Set(mappings.filter((m) => m.protocol === 'udp').map((m) => m.hostPort))];
  // conntrack exits 1 when nothing matched: that is fine.
  await Promise.all(ports.map((port) => exec.runAsync(['conntrack', '-D', '-p', 'udp', '--orig-port-dst', String(port)], { allowFailure: true })));
}
