import * as z from 'zod/mini';
import { describeIssues } from './conf.ts';
import { CniError, ErrorCode } from './errors.ts';
import { lazy } from './lazy.ts';
import { atLeast } from './versions.ts';

/**
 * The result in its newest shape (spec 1.1.0). Plugins build this; the core converts it to the
 * config's cniVersion on output and converts any prevResult to it on input.
 */
export const Interface = lazy(() =>
  z.looseObject({
    name: z.string(),
    mac: z.optional(z.string()),
    mtu: z.optional(z.number()),
    sandbox: z.optional(z.string()),
    socketPath: z.optional(z.string()),
    pciID: z.optional(z.string()),
  }),
);
export type Interface = z.infer<ReturnType<typeof Interface>>;

export const IPConfig = lazy(() =>
  z.looseObject({
    address: z.string(),
    gateway: z.optional(z.string()),
    interface: z.optional(z.number()),
  }),
);
export type IPConfig = z.infer<ReturnType<typeof IPConfig>>;

export const Route = lazy(() =>
  z.looseObject({
    dst: z.string(),
    gw: z.optional(z.string()),
    mtu: z.optional(z.number()),
    advmss: z.optional(z.number()),
    priority: z.optional(z.number()),
    table: z.optional(z.number()),
    scope: z.optional(z.number()),
  }),
);
export type Route = z.infer<ReturnType<typeof Route>>;

export const DNS = lazy(() =>
  z.looseObject({
    nameservers: z.optional(z.array(z.string())),
    domain: z.optional(z.string()),
    search: z.optional(z.array(z.string())),
    options: z.optional(z.array(z.string())),
  }),
);
export type DNS = z.infer<ReturnType<typeof DNS>>;

export interface Result {
  cniVersion?: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

const CurrentResult = lazy(() =>
  z.looseObject({
    cniVersion: z.optional(z.string()),
    interfaces: z.optional(z.nullable(z.array(Interface()))),
    ips: z.optional(z.nullable(z.array(IPConfig()))),
    routes: z.optional(z.nullable(z.array(Route()))),
    dns: z.optional(z.nullable(DNS())),
  }),
);

const LegacyIPConfig = lazy(() =>
  z.looseObject({
    ip: z.string(),
    gateway: z.optional(z.string()),
    routes: z.optional(z.nullable(z.array(Route()))),
  }),
);
type LegacyIPConfig = z.infer<ReturnType<typeof LegacyIPConfig>>;
const LegacyResult = lazy(() =>
  z.looseObject({
    cniVersion: z.optional(z.string()),
    ip4: z.optional(z.nullable(LegacyIPConfig())),
    ip6: z.optional(z.nullable(LegacyIPConfig())),
    dns: z.optional(z.nullable(DNS())),
  }),
);

export const ipFamily = (cidrOrIp: string): 4 | 6 => (cidrOrIp.includes(':') ? 6 : 4);

const ROUTE_FIELDS_SINCE_1_1 = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const INTERFACE_FIELDS_SINCE_1_1 = ['mtu', 'socketPath', 'pciID'] as const;

function without<T extends object>(obj: T, keys: readonly string[]): T {
  const copy = { ...obj } as Record<string, unknown>;
  for (const k of keys) delete copy[k];
  return copy as unknown as T;
}

function present<T>(list: T[] | null | undefined): T[] | undefined {
  return list && list.length > 0 ? list : undefined;
}

/** Reads a result of any spec version (e.g. a prevResult or a delegate's output). */
export function parseResult(raw: unknown, fallbackVersion: string): Result {
  const version =
    raw && typeof raw === 'object' && typeof (raw as { cniVersion?: unknown }).cniVersion === 'string'
      ? (raw as { cniVersion: string }).cniVersion
      : fallbackVersion;
  if (!atLeast(version, '0.3.0')) {
    const parsed = LegacyResult().safeParse(raw);
    if (!parsed.success) throw resultDecodeError(parsed.error, raw);
    const { ip4, ip6, dns } = parsed.data;
    const legacy = [ip4, ip6].filter((c): c is LegacyIPConfig => !!c);
    return {
      cniVersion: version,
      ips: present(legacy.map((c) => ({ address: c.ip, ...(c.gateway ? { gateway: c.gateway } : {}) }))),
      routes: present(legacy.flatMap((c) => c.routes ?? [])),
      ...(dns ? { dns } : {}),
    };
  }
  const parsed = CurrentResult().safeParse(raw);
  if (!parsed.success) throw resultDecodeError(parsed.error, raw);
  const { interfaces, ips, routes, dns } = parsed.data;
  return {
    cniVersion: version,
    interfaces: present(interfaces),
    ips: present(ips?.map((ip) => without(ip, ['version']))),
    routes: present(routes),
    ...(dns ? { dns } : {}),
  };
}

function resultDecodeError(error: z.core.$ZodError, raw: unknown): CniError {
  return new CniError(ErrorCode.decodingFailure, 'cannot decode result', describeIssues(error, raw));
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
  const first = (family: 4 | 6) => result.ips?.find((ip) => ipFamily(ip.address) === family);
  const block = (family: 4 | 6) => {
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
