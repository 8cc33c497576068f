import type { NetConf } from './conf.ts';
import { CniError, ErrorCode } from './errors.ts';

/*
 * What every call does with its config before any plugin code: decode the JSON and check the common
 * fields. Kept free of zod, so VERSION, error paths and plugins without a schema (loopback) never load it.
 */

/** The network name's form (spec section 1, and libcni's ValidateNetworkName): it may name files and chains. */
export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const NETWORK_NAME_RULE = 'must start with a letter or digit and contain only letters, digits, "_", "." and "-"';

/** Parses stdin bytes as JSON: code 6 when they are not a JSON object. */
export function parseJsonObject(bytes: string, what = 'network config'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes);
  } catch (err) {
    throw new CniError(ErrorCode.decodingFailure, `cannot decode ${what}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CniError(ErrorCode.decodingFailure, `cannot decode ${what}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The common fields of any config, checked by hand: every plugin call runs this, and building the
 * NetConf schema (conf.ts) costs ~1.5 ms in the compiled binary, more than the whole check. It gives
 * the schema's verdicts and messages (a unit test holds the two together); plugins then parse
 * their own fields with their own schemas.
 */
export function readNetConf(raw: Record<string, unknown>): NetConf {
  const fail = (key: string, problem: string) => new CniError(ErrorCode.invalidConfig, `invalid network config at ${key}: ${problem}`, `${key}: ${problem}`);
  const expect = (key: string, value: unknown, ok: boolean, want: string) => {
    if (!ok) throw fail(key, `expected ${want}, got ${kindOf(value)}`);
  };
  const { name, cniVersion, type, ipam, args, runtimeConfig } = raw;
  expect('name', name, typeof name === 'string', 'string');
  if (name === '') throw fail('name', 'missing network name');
  if (!NETWORK_NAME.test(name as string)) throw fail('name', NETWORK_NAME_RULE);
  if (cniVersion !== undefined) expect('cniVersion', cniVersion, typeof cniVersion === 'string', 'string');
  if (type !== undefined) expect('type', type, typeof type === 'string', 'string');
  if (ipam !== undefined) {
    expect('ipam', ipam, isPlainObject(ipam), 'object');
    const ipamType = (ipam as Record<string, unknown>).type;
    if (ipamType !== undefined) expect('ipam.type', ipamType, typeof ipamType === 'string', 'string');
  }
  if (args !== undefined && args !== null) expect('args', args, isPlainObject(args), 'record');
  if (runtimeConfig !== undefined && runtimeConfig !== null) expect('runtimeConfig', runtimeConfig, isPlainObject(runtimeConfig), 'record');
  return raw as NetConf;
}

export function kindOf(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  return Array.isArray(v) ? 'array' : typeof v;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
