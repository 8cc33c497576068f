import { CniError, ErrorCode } from './errors.ts';
import type { DNS, Interface, IPConfig, Route } from './result-parse.ts';
import { fieldsMissing, NEWEST, resultShape } from './result-shape.ts';
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
  const shape = resultShape(version);
  if (shape.legacy) return toLegacy(result, version, dns);
  const dropInterface = fieldsMissing(NEWEST.interface, shape.interface);
  const dropRoute = fieldsMissing(NEWEST.route, shape.route);
  const interfaces = result.interfaces?.map((i) => (dropInterface.length ? without(i, dropInterface) : i));
  const ips = result.ips?.map((ip) => {
    if (!shape.ip.includes('version')) return ip;
    const { interface: index, ...rest } = ip;
    return { ...(index === undefined ? {} : { interface: index }), version: String(ipFamily(ip.address)), ...rest };
  });
  const routes = result.routes?.map((r) => (dropRoute.length ? without(r, dropRoute) : r));
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
