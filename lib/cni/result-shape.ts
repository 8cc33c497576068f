import { atLeast, LATEST_VERSION } from './versions.ts';

/**
 * Which fields a result has at which spec version, in the order of libcni's Go structs. The one
 * place this is written: result conversion (`result.ts`), result parsing (`result-parse.ts`) and
 * the CLI's Go-shaped cache entry (`cli/go-result.ts`) all read it. zod-free: on the start-up path.
 *
 * - 0.1.0, 0.2.0: `ip4` / `ip6` blocks (`ip`, `gateway`, `routes` of `dst`, `gw`), no interfaces;
 * - 0.3.0 – 0.4.0: `interfaces`, `ips`, `routes`, `dns`; every `ips` entry says its `version`;
 * - 1.0.0: `ips` without `version`;
 * - 1.1.0: interfaces gain `mtu`, `socketPath`, `pciID`; routes `mtu`, `advmss`, `priority`, `table`, `scope`.
 */
export interface ResultShape {
  /** 0.1.0 / 0.2.0: `ip4` and `ip6` blocks instead of interfaces and ips. */
  legacy: boolean;
  interface: readonly string[];
  ip: readonly string[];
  /** Route fields; in 0.1.0 / 0.2.0 those of the routes inside `ip4` / `ip6`. */
  route: readonly string[];
}

/** Fields holding numbers (all others are strings, or lists of them in DNS). */
export const NUMBER_FIELDS: ReadonlySet<string> = new Set(['mtu', 'advmss', 'priority', 'table', 'scope', 'interface']);

const ROUTE = ['dst', 'gw'] as const;
const ROUTE_1_1 = ['dst', 'gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const INTERFACE = ['name', 'mac', 'sandbox'] as const;
const INTERFACE_1_1 = ['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID'] as const;
const IP = ['interface', 'address', 'gateway'] as const;
/** What 0.3.x / 0.4.0 ips have and later ones do not: dropped when a result is read into the newest shape. */
export const RETIRED_IP_FIELDS = ['version'] as const;
const IP_VERSIONED = [...RETIRED_IP_FIELDS, ...IP] as const;

export function resultShape(version: string): ResultShape {
  const since11 = atLeast(version, '1.1.0');
  return {
    legacy: !atLeast(version, '0.3.0'),
    interface: since11 ? INTERFACE_1_1 : INTERFACE,
    ip: atLeast(version, '1.0.0') ? IP : IP_VERSIONED,
    route: since11 ? ROUTE_1_1 : ROUTE,
  };
}

/** The newest shape, the one plugins build and the core converts from. */
export const NEWEST: ResultShape = resultShape(LATEST_VERSION);

/** Fields of `from` that `to` lacks: what converting between the two drops. */
export const fieldsMissing = (from: readonly string[], to: readonly string[]): string[] => from.filter((f) => !to.includes(f));
