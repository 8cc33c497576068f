import * as z from 'zod/mini';
import { CniError, ErrorCode } from './errors.ts';
import { lazy } from './lazy.ts';

/** Fields every network configuration has (spec section 1); unknown keys are kept. */
export const NetConf = lazy(() =>
  z.looseObject({
    cniVersion: z.optional(z.string()),
    name: z.string().check(z.minLength(1, 'missing network name')),
    type: z.optional(z.string()),
    ipam: z.optional(z.looseObject({ type: z.optional(z.string()) })),
    args: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
    runtimeConfig: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
    prevResult: z.optional(z.unknown()),
  }),
);
export type NetConf = z.infer<ReturnType<typeof NetConf>>;

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

/**
 * Renames keys that match a schema key case-insensitively to the schema's spelling, recursively,
 * as Go's encoding/json matches fields (CRI sends `HostPort`, podman `hostPort`). An exact match
 * wins over a case-insensitive one.
 */
export function canonicalizeKeys(value: unknown, schema: AnySchema): unknown {
  const s = core(schema);
  const def = s._zod.def as {
    type: string;
    shape?: Record<string, AnySchema>;
    element?: AnySchema;
    options?: AnySchema[];
    valueType?: AnySchema;
  };
  if (def.type === 'array' && def.element && Array.isArray(value)) {
    return value.map((v) => canonicalizeKeys(v, def.element!));
  }
  if (def.type === 'record' && def.valueType && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, canonicalizeKeys(v, def.valueType!)]));
  }
  if (def.type === 'union' && def.options) {
    return def.options.reduce((v, option) => canonicalizeKeys(v, option), value);
  }
  if (def.type !== 'object' || !def.shape || !isPlainObject(value)) return value;
  const byLower = new Map(Object.keys(def.shape).map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const canonical = key in def.shape ? key : (byLower.get(key.toLowerCase()) ?? key);
    if (canonical !== key && canonical in value) continue; // exact spelling present: it wins
    const field = def.shape[canonical];
    out[canonical] = field ? canonicalizeKeys(v, field) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Formats schema issues with their paths, e.g. `ipam.ranges.0.0.subnet: invalid CIDR`. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Validates a config object against a plugin schema: code 7 naming every offending key. */
export function parseConf<S extends AnySchema>(schema: S, raw: unknown): z.infer<S> {
  const parsed = z.safeParse(schema, canonicalizeKeys(raw, schema));
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length ? ` at ${first.path.join('.')}` : '';
    throw new CniError(ErrorCode.invalidConfig, `invalid network config${where}: ${first?.message ?? 'invalid'}`, describeIssues(parsed.error));
  }
  return parsed.data as z.infer<S>;
}
