import { CniError, ErrorCode } from './errors.ts';
import type { DNS, Interface, IPConfig, Route } from './result-parse.ts';
import { atLeast } from './versions.ts';
import type { Family } from '../net/ip.ts';

export type { DNS, Interface, IPConfig, Route };

/**
 * The result in its newest shape (spec 1.1.0). Plugins build this; the core converts it to the
 * config's cniVersion on output and converts any prevResult to it on input.
 */
export interface Result {
  cniVersion?: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

export const ipFamily = (cidrOrIp: string): Family => (cidrOrIp.includes(':') ? 6 : 4);

const ROUTE_FIELDS_SINCE_1_1 = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const INTERFACE_FIELDS_SINCE_1_1 = ['mtu', 'socketPath', 'pciID'] as const;

export function without<T extends object>(obj: T, keys: readonly string[]): T {
  const copy = { ...obj } as Record<string, unknown>;
  for (const k of keys) delete copy[k];
  return copy as unknown as T;
}

export function present<T>(list: T[] | null | undefined): T[] | undefined {
  return list && list.length > 0 ? list : undefined;
}

/** Writes a result in the shape of `version`, as libcni's converters do. */
export function convertResult(result: Result, version: string): Record<string, unknown> {
  const dns = result.dns ?? {};
  if (!atLeast(version, '0.3.0')) return toLegacy(result, version, dns);
  const before11 = !atLeast(version, '1.1.0');
  const interfaces = result.interfaces?.map((i) => (before11 ? without(i, INTERFACE_FIELDS_SINCE_1_1) : i));
  const ips = result.ips?.map((ip) => {
    if (atLeast(version, '1.0.0')) return ip;
    const { interface: index, ...rest } = ip;
    return { ...(index === undefined ? {} : { interface: index }), version: String(ipFamily(ip.address)), ...rest };
  });
  const routes = result.routes?.map((r) => (before11 ? without(r, ROUTE_FIELDS_SINCE_1_1) : r));
  return {
    cniVersion: version,
    ...(present(interfaces) ? { interfaces } : {}),
    ...(present(ips) ? { ips } : {}),
    ...(present(routes) ? { routes } : {}),
    dns,
  };
}

function toLegacy(result: Result, version: string, dns: DNS): Record<string, unknown> {
  const first = (family: Family) => result.ips?.find((ip) => ipFamily(ip.address) === family);
  const block = (family: Family) => {
    const ip = first(family);
    if (!ip) return undefined;
    const routes = (result.routes ?? [])
      .filter((r) => ipFamily(r.dst) === family)
      .map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) }));
    return { ip: ip.address, ...(ip.gateway ? { gateway: ip.gateway } : {}), ...(routes.length ? { routes } : {}) };
  };
  const ip4 = block(4);
  const ip6 = block(6);
  if (!ip4 && !ip6) {
    throw new CniError(ErrorCode.incompatibleVersion, 'cannot convert result to ' + version, 'no IP addresses: spec versions before 0.3.0 require at least one');
  }
  return { cniVersion: version, ...(ip4 ? { ip4 } : {}), ...(ip6 ? { ip6 } : {}), dns };
}
