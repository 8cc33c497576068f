import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { LATEST_VERSION, compareVersions } from '../lib/cni/versions.ts';
import { goMarshal } from './go-json.ts';

/** A network configuration list as libcni loads it (libcni/conf.go). */
export interface ConfList {
  name: string;
  /** The version every plugin is called with: `cniVersions`' highest we speak, else `cniVersion`. */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  /** Each plugin's config as written, in order. */
  plugins: Record<string, unknown>[];
  /** The bytes libcni caches: the file as read, or the upconverted list for a single .conf. */
  bytes: string;
  file: string;
}

export class ConfError extends Error {
  override name = 'ConfError';
}

const VERSION = /^\d+\.\d+\.\d+$/;

/** Parses conflist bytes the way libcni's ConfListFromBytes does, with 1.2's `cniVersions`. */
export function parseConfList(bytes: string, file = '(bytes)'): ConfList {
  const raw = parseObject(bytes, `error parsing configuration list ${file}`);
  const fail = (why: string) => new ConfError(`error parsing configuration list ${file}: ${why}`);
  if (!('name' in raw)) throw fail('no name');
  if (typeof raw.name !== 'string') throw fail(`invalid name type ${typeof raw.name}`);
  let cniVersion = '';
  if ('cniVersion' in raw) {
    if (typeof raw.cniVersion !== 'string') throw fail(`invalid cniVersion type ${typeof raw.cniVersion}`);
    cniVersion = raw.cniVersion;
  }
  if ('cniVersions' in raw) cniVersion = chooseVersion(raw.cniVersions, cniVersion, fail);
  const flag = (key: string): boolean => {
    const v = raw[key];
    if (v === undefined) return false;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && ['true', 'false'].includes(v.toLowerCase())) return v.toLowerCase() === 'true';
    throw fail(`invalid value ${JSON.stringify(v)} for ${key}`);
  };
  if (!('plugins' in raw)) throw fail("no 'plugins' key");
  if (!Array.isArray(raw.plugins)) throw fail(`invalid 'plugins' type ${typeof raw.plugins}`);
  if (raw.plugins.length === 0) throw fail('no plugins in list');
  const plugins = raw.plugins.map((p, i) => {
    try {
      return checkPluginConf(p);
    } catch (err) {
      throw new ConfError(`failed to parse plugin config ${i} in ${file}: ${(err as Error).message}`);
    }
  });
  return { name: raw.name, cniVersion, disableCheck: flag('disableCheck'), disableGC: flag('disableGC'), plugins, bytes, file };
}

/** The highest of `cniVersions` (and `cniVersion`) that is not newer than the spec we implement. */
function chooseVersion(list: unknown, cniVersion: string, fail: (why: string) => Error): string {
  if (!Array.isArray(list)) throw fail(`invalid type for cniVersions: ${typeof list}`);
  const candidates = list.map((v, i) => {
    if (typeof v !== 'string' || !VERSION.test(v)) throw fail(`invalid cniVersions entry ${JSON.stringify(v)} at index ${i}`);
    return v;
  });
  if (cniVersion !== '') {
    if (!VERSION.test(cniVersion)) throw fail(`invalid cniVersion ${JSON.stringify(cniVersion)}`);
    candidates.push(cniVersion);
  }
  const usable = candidates.filter((v) => compareVersions(v, LATEST_VERSION) <= 0).sort(compareVersions);
  return usable.at(-1) ?? cniVersion;
}

/** What Go's types.NetConf insists on when it decodes a plugin's config. */
function checkPluginConf(p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new Error('expected a JSON object');
  const conf = p as Record<string, unknown>;
  if (typeof conf.type !== 'string' || conf.type === '') throw new Error("error parsing configuration: missing 'type'");
  for (const key of ['name', 'cniVersion'] as const) {
    if (conf[key] !== undefined && conf[key] !== null && typeof conf[key] !== 'string') throw new Error(`error parsing configuration: ${key} must be a string`);
  }
  const caps = conf.capabilities;
  if (caps !== undefined && caps !== null && (typeof caps !== 'object' || Array.isArray(caps) || Object.values(caps).some((v) => typeof v !== 'boolean'))) {
    throw new Error('error parsing configuration: capabilities must map names to booleans');
  }
  return conf;
}

function parseObject(bytes: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes);
  } catch (err) {
    throw new ConfError(`${what}: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfError(`${what}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** A single-plugin .conf upconverted to a list, with the bytes libcni marshals for it. */
export function confListFromConf(bytes: string, file: string): ConfList {
  const conf = parseObject(bytes, `error parsing configuration ${file}`);
  try {
    checkPluginConf(conf);
  } catch (err) {
    throw new ConfError(`${(err as Error).message} (${file})`);
  }
  const list = { name: typeof conf.name === 'string' ? conf.name : '', cniVersion: typeof conf.cniVersion === 'string' ? conf.cniVersion : '', plugins: [conf] };
  return { ...parseConfList(goMarshal(list), file), file };
}

function confFiles(dir: string, extensions: readonly string[]): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter((e) => !e.isDirectory() && extensions.includes(extname(e.name)))
    .map((e) => join(dir, e.name))
    .sort();
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfError(`error reading ${file}: ${(err as Error).message}`);
  }
}

/** libcni's LoadConfList: the first *.conflist named `name`, else a *.conf / *.json upconverted. */
export function loadConfList(dir: string, name: string): ConfList {
  const lists = confFiles(dir, ['.conflist']);
  for (const file of lists) {
    const list = parseConfList(read(file), file);
    if (list.name === name) return list;
  }
  const singles = confFiles(dir, ['.conf', '.json']);
  if (singles.length === 0 && lists.length === 0) throw new ConfError(`no net configurations found in ${dir}`);
  for (const file of singles) {
    const list = confListFromConf(read(file), file);
    if (list.name === name) return list;
  }
  throw new ConfError(`no net configuration with name "${name}" in ${dir}`);
}

/** One config file as libcni reads it: a .conflist as written, a .conf or .json upconverted to a list. */
export function readConfFile(file: string): ConfList {
  const bytes = read(file);
  return file.endsWith('.conflist') ? parseConfList(bytes, file) : confListFromConf(bytes, file);
}

/** Every network config in `dir`, each parsed or with the error that stopped it (for doctor). */
export function scanConfDir(dir: string): { file: string; list?: ConfList; error?: string }[] {
  const out: { file: string; list?: ConfList; error?: string }[] = [];
  for (const file of confFiles(dir, ['.conflist', '.conf', '.json'])) {
    try {
      out.push({ file, list: readConfFile(file) });
    } catch (err) {
      out.push({ file, error: (err as Error).message });
    }
  }
  return out;
}
