import * as z from 'zod/mini';
import { describeIssues } from './conf.ts';
import { CniError, ErrorCode } from './errors.ts';
import { lazy } from './lazy.ts';
import { optNumber, optString, string } from './schemas.ts';
import { present, without, type Result } from './result.ts';
import { RETIRED_IP_FIELDS, resultShape } from './result-shape.ts';

/**
 * Schemas of results of every spec version, and parsing them (a prevResult, a delegate's output).
 * A module of its own so that a call without a result to read never loads zod.
 */
export const Interface = lazy(() =>
  z.looseObject({
    name: string(),
    mac: optString(),
    mtu: optNumber(),
    sandbox: optString(),
    socketPath: optString(),
    pciID: optString(),
  }),
);
export type Interface = z.infer<ReturnType<typeof Interface>>;

export const IPConfig = lazy(() =>
  z.looseObject({
    address: string(),
    gateway: optString(),
    interface: optNumber(),
  }),
);
export type IPConfig = z.infer<ReturnType<typeof IPConfig>>;

export const Route = lazy(() =>
  z.looseObject({
    dst: string(),
    gw: optString(),
    mtu: optNumber(),
    advmss: optNumber(),
    priority: optNumber(),
    table: optNumber(),
    scope: optNumber(),
  }),
);
export type Route = z.infer<ReturnType<typeof Route>>;

const StringList = lazy(() => z.optional(z.array(string())));

export const DNS = lazy(() =>
  z.looseObject({
    nameservers: StringList(),
    domain: optString(),
    search: StringList(),
    options: StringList(),
  }),
);
export type DNS = z.infer<ReturnType<typeof DNS>>;


const CurrentResult = lazy(() =>
  z.looseObject({
    cniVersion: optString(),
    interfaces: z.optional(z.nullable(z.array(Interface()))),
    ips: z.optional(z.nullable(z.array(IPConfig()))),
    routes: z.optional(z.nullable(z.array(Route()))),
    dns: z.optional(z.nullable(DNS())),
  }),
);

const LegacyIPConfig = lazy(() =>
  z.looseObject({
    ip: string(),
    gateway: optString(),
    routes: z.optional(z.nullable(z.array(Route()))),
  }),
);
type LegacyIPConfig = z.infer<ReturnType<typeof LegacyIPConfig>>;
const LegacyResult = lazy(() =>
  z.looseObject({
    cniVersion: optString(),
    ip4: z.optional(z.nullable(LegacyIPConfig())),
    ip6: z.optional(z.nullable(LegacyIPConfig())),
    dns: z.optional(z.nullable(DNS())),
  }),
);

/** Reads a result of any spec version (e.g. a prevResult or a delegate's output). */
export function parseResult(raw: unknown, fallbackVersion: string): Result {
  const version =
    raw && typeof raw === 'object' && typeof (raw as { cniVersion?: unknown }).cniVersion === 'string'
      ? (raw as { cniVersion: string }).cniVersion
      : fallbackVersion;
  if (resultShape(version).legacy) {
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
    ips: present(ips?.map((ip) => without(ip, RETIRED_IP_FIELDS))),
    routes: present(routes),
    ...(dns ? { dns } : {}),
  };
}

function resultDecodeError(error: z.core.$ZodError, raw: unknown): CniError {
  return new CniError(ErrorCode.decodingFailure, 'cannot decode result', describeIssues(error, raw));
}
