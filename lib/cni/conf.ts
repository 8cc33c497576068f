import * as z from 'zod/mini';
import { configPath } from './config-path.ts';
import { CniError, ErrorCode } from './errors.ts';
import { lazy } from './lazy.ts';
import { isPlainObject, kindOf, NETWORK_NAME, NETWORK_NAME_RULE } from './netconf.ts';

/** Fields every network configuration has (spec section 1); unknown keys are kept. */
export const NetConf = lazy(() =>
  z.looseObject({
    cniVersion: z.optional(z.string()),
    name: z.string().check(z.minLength(1, 'missing network name'), z.regex(NETWORK_NAME, NETWORK_NAME_RULE)),
    type: z.optional(z.string()),
    ipam: z.optional(z.looseObject({ type: z.optional(z.string()) })),
    args: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
    runtimeConfig: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
    prevResult: z.optional(z.unknown()),
  }),
);
export type NetConf = z.infer<ReturnType<typeof NetConf>>;

type AnySchema = z.core.$ZodType;

/** Peels wrappers (optional, nullable, default, pipe, catch) to the schema that shapes the value. */
function core(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

/** Keys every object inherits (`constructor`, `toString`, `__proto__`, …): never a config field. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype).map((k) => k.toLowerCase()));

/**
 * Renames keys that match a schema key case-insensitively to the schema's spelling, recursively,
 * as Go's encoding/json matches fields (CRI sends `HostPort`, podman `hostPort`). An exact match
 * wins over a case-insensitive one. A key named like an Object prototype member is code 7: looked up
 * in a shape it would find the inherited member, and no plugin has such a field.
 */
export function canonicalizeKeys(value: unknown, schema: AnySchema, path: readonly PropertyKey[] = []): unknown {
  const s = core(schema);
  const def = s._zod.def as {
    type: string;
    shape?: Record<string, AnySchema>;
    element?: AnySchema;
    options?: AnySchema[];
    valueType?: AnySchema;
  };
  if (def.type === 'array' && def.element && Array.isArray(value)) {
    return value.map((v, i) => canonicalizeKeys(v, def.element!, [...path, i]));
  }
  if (def.type === 'record' && def.valueType && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [refuseInherited(k, path), canonicalizeKeys(v, def.valueType!, [...path, k])]));
  }
  if (def.type === 'union' && def.options) {
    return def.options.reduce((v, option) => canonicalizeKeys(v, option, path), value);
  }
  if (def.type !== 'object' || !def.shape || !isPlainObject(value)) return value;
  const shape = def.shape;
  const byLower = new Map(Object.keys(shape).map((k) => [k.toLowerCase(), k]));
  const out: [string, unknown][] = [];
  for (const [key, v] of Object.entries(value)) {
    refuseInherited(key, path);
    const canonical = Object.hasOwn(shape, key) ? key : (byLower.get(key.toLowerCase()) ?? key);
    if (canonical !== key && Object.hasOwn(value, canonical)) continue; // exact spelling present: it wins
    const field = Object.hasOwn(shape, canonical) ? shape[canonical] : undefined;
    out.push([canonical, field ? canonicalizeKeys(v, field, [...path, canonical]) : v]);
  }
  return Object.fromEntries(out); // own data properties, even for a key "__proto__"
}

function refuseInherited(key: string, path: readonly PropertyKey[]): string {
  if (!INHERITED.has(key.toLowerCase())) return key;
  const where = [...path, key].join('.');
  throw new CniError(ErrorCode.invalidConfig, `invalid network config at ${where}: key ${JSON.stringify(key)} is reserved`, `${where}: a key named like an Object prototype member is no config field`);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}


/**
 * A readable message for one issue. zod/mini carries no locale, so every built-in issue says only
 * "Invalid input"; a schema's own message (e.g. `invalid CIDR`) is kept as it is.
 */
export function issueMessage(issue: z.core.$ZodIssue, input?: unknown): string {
  if (issue.message && issue.message !== 'Invalid input') return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, got ${kindOf(valueAt(input, issue.path))}`;
    case 'too_small':
      return `must be ${issue.origin === 'number' || issue.origin === 'bigint' ? '' : `${issue.origin} length `}${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return `must be ${issue.origin === 'number' || issue.origin === 'bigint' ? '' : `${issue.origin} length `}${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return `invalid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'unrecognized_keys':
      return `unknown keys ${issue.keys.join(', ')}`;
    case 'invalid_union':
      return 'matches none of the allowed forms';
    default:
      return 'invalid value';
  }
}

/** Formats schema issues with their paths, e.g. `ipam.ranges.0.0.subnet: invalid CIDR`. */
export function describeIssues(error: z.core.$ZodError, input?: unknown): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${issueMessage(i, input)}`).join('; ');
}

/** A plugin's state directory from its config (or `fallback`), checked before any file is touched. */
export function stateDirOf(given: string | undefined, fallback: string, key = 'dataDir'): string {
  return given ? configPath(key, given) : fallback;
}

/** Validates a config object against a plugin schema: code 7 naming every offending key. */
export function parseConf<S extends AnySchema>(schema: S, raw: unknown): z.infer<S> {
  const input = canonicalizeKeys(raw, schema);
  const parsed = z.safeParse(schema, input);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length ? ` at ${first.path.join('.')}` : '';
    throw new CniError(ErrorCode.invalidConfig, `invalid network config${where}: ${first ? issueMessage(first, input) : 'invalid'}`, describeIssues(parsed.error, input));
  }
  return parsed.data as z.infer<S>;
}
