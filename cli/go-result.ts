import { isPlainObject as isObj } from '../lib/cni/netconf.ts';
import { parseResult } from '../lib/cni/result-parse.ts';
import { convertResult } from '../lib/cni/result.ts';
import { NUMBER_FIELDS, resultShape } from '../lib/cni/result-shape.ts';
import { isSupported } from '../lib/cni/versions.ts';

type Obj = Record<string, unknown>;

/**
 * A plugin's result as libcni holds it: decoded into the Go struct of its spec version (unknown
 * keys dropped, keys matched case-insensitively, empty fields omitted, `dns` always present) and
 * re-encoded in struct field order. This is what cnitool prints and what libcni caches.
 */
export function toGoResult(raw: Obj, fallbackVersion: string): Obj {
  const version = str(get(raw, 'cniVersion')) || fallbackVersion;
  // the versions libcni can decode, plus 1.1.0 (libcni ≥ 1.2): the ones we speak
  if (!isSupported(version)) throw new Error(`unsupported CNI result version "${version}"`);
  const shape = resultShape(version);
  if (shape.legacy) {
    return omitEmpty({ cniVersion: version, ip4: legacyIp(get(raw, 'ip4'), shape.route), ip6: legacyIp(get(raw, 'ip6'), shape.route), dns: dns(get(raw, 'dns')) });
  }
  return omitEmpty({
    cniVersion: version,
    interfaces: list(get(raw, 'interfaces')).map((i) => omitEmpty(fields(i, shape.interface), ['name'])),
    ips: list(get(raw, 'ips')).map((ip) => omitEmpty(fields(ip, shape.ip), ['version', 'address', 'interface'])),
    routes: list(get(raw, 'routes')).map((r) => route(r, shape.route)),
    dns: dns(get(raw, 'dns')),
  }, ['dns']);
}

/** The struct's fields in order, each decoded as its Go type (a number or a string). */
function fields(o: unknown, names: readonly string[]): Obj {
  return Object.fromEntries(names.map((f) => [f, NUMBER_FIELDS.has(f) ? num(get(o, f)) : str(get(o, f))]));
}

/** A result converted to another spec version (libcni's GetAsVersion), in Go struct shape. */
export function goResultAsVersion(result: Obj, version: string): Obj {
  const from = str(get(result, 'cniVersion')) || version;
  if (from === version) return toGoResult(result, version);
  return toGoResult(convertResult(parseResult(result, from), version), version);
}

const route = (r: unknown, names: readonly string[]): Obj => omitEmpty(fields(r, names), ['dst', 'table', 'scope']);

function legacyIp(v: unknown, routeFields: readonly string[]): Obj | undefined {
  if (!isObj(v)) return undefined;
  return omitEmpty({ ip: str(get(v, 'ip')), gateway: str(get(v, 'gateway')), routes: list(get(v, 'routes')).map((r) => route(r, routeFields)) }, ['ip']);
}

function dns(v: unknown): Obj {
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  return omitEmpty({ nameservers: strings(get(v, 'nameservers')), domain: str(get(v, 'domain')), search: strings(get(v, 'search')), options: strings(get(v, 'options')) });
}

/** Go's `omitempty`: drops "", 0, nil and empty lists; `keep` lists fields without omitempty or
 * pointers (`*int`), which are dropped only when absent. */
function omitEmpty(o: Obj, keep: readonly string[] = []): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const empty = v === undefined || v === '' || v === 0 || (Array.isArray(v) && v.length === 0);
    if (!empty || (keep.includes(k) && v !== undefined)) out[k] = v;
  }
  return out;
}

/** Go's decoder matches struct fields case-insensitively; an exact match wins. */
function get(o: unknown, key: string): unknown {
  if (!isObj(o)) return undefined;
  if (key in o) return o[key];
  const lower = key.toLowerCase();
  const found = Object.keys(o).find((k) => k.toLowerCase() === lower);
  return found === undefined ? undefined : o[found];
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
