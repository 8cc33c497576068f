import { validIfName } from '../../lib/cni/env.ts';
import type { Logger } from '../../lib/cni/log.ts';
import { ProcessError, type Exec } from '../../lib/exec.ts';
import { ipJson } from '../../lib/ip/ip.ts';
import { ensureHostSysctl, validSysctl } from '../../lib/ip/sysctl.ts';
import { deleteUdpConntrack } from '../../lib/netfilter/conntrack.ts';
import type { Mapping } from './conf.ts';

/**
 * DNAT of 127.0.0.1 to a container needs route_localnet on the host interface that routes to it
 * (as the reference, it is left on: other containers behind the same interface rely on it).
 */
export async function enableLocalnetRouting(exec: Exec, containerIp: string): Promise<void> {
  const [route] = await ipJson<{ dev?: string }[]>(exec, ['route', 'get', containerIp]);
  const dev = route?.dev;
  if (!dev || validIfName(dev) !== undefined || dev === 'lo') return;
  const sysctl = { path: `net/ipv4/conf/${dev}/route_localnet`, value: '1' };
  if (validSysctl(sysctl)) ensureHostSysctl(sysctl);
}

const CONNTRACK_IN_FLIGHT = 4;

/**
 * Drops UDP conntrack entries for the host ports, so earlier flows do not bypass the new DNAT. One
 * `conntrack` per port (it takes one port), at most 4 at a time: a mapping of thousands of ports must
 * not start thousands of processes at once. Without a `conntrack` binary this is a warning: the
 * forwarding works, only flows older than it keep their old path until they expire.
 */
export async function flushUdpConntrack(exec: Exec, mappings: readonly Mapping[], log: Logger): Promise<void> {
  const ports = [...new Set(mappings.filter((m) => m.protocol === 'udp').map((m) => m.hostPort))];
  let missing: ProcessError | undefined;
  const worker = async () => {
    for (let port = ports.shift(); port !== undefined && !missing; port = ports.shift()) {
      try {
        await deleteUdpConntrack(exec, port);
      } catch (err) {
        if (!(err instanceof ProcessError && err.notStarted)) throw err;
        missing = err;
      }
    }
  };
  const workers = await Promise.allSettled(Array.from({ length: Math.min(CONNTRACK_IN_FLIGHT, ports.length) }, worker));
  const failed = workers.find((w) => w.status === 'rejected');
  if (failed) throw failed.reason;
  if (missing) log.warn('cannot flush UDP conntrack entries of the host ports: existing flows keep their old path until they expire', { error: missing.message });
}
