import { execPlugin, findInPath } from '../lib/cni/delegate.ts';
import { CniError, ErrorCode, toCniError } from '../lib/cni/errors.ts';
import { allowsVerb, UNVERSIONED } from '../lib/cni/versions.ts';
import type { Exec } from '../lib/exec.ts';
import { readCacheEntry, removeCacheEntry, writeCacheEntry, type CachedAttachment } from './cache.ts';
import type { ConfList } from './conflist.ts';
import { goMarshal } from './go-json.ts';
import { goResultAsVersion, toGoResult } from './go-result.ts';
import type { RuntimeConf } from './runtime-conf.ts';

type Obj = Record<string, unknown>;
type Verb = 'ADD' | 'CHECK' | 'DEL' | 'GC' | 'STATUS';

/**
 * Runs network configuration lists against any CNI plugins, as libcni's CNIConfig does
 * (libcni/api.go, v1.1.2, plus v1.2's cniVersions/GC/STATUS): every plugin is exec'd, never
 * run in-process, so reference plugins and ours are treated alike.
 */
export interface Runner {
  exec: Exec;
  /** CNI_PATH directories. */
  path: string[];
  cacheDir: string;
  /** The environment plugins inherit (CNI_* are set per call). */
  env: Readonly<Record<string, string | undefined>>;
}

export interface GcAttachment {
  containerID: string;
  ifname: string;
}

/** A plugin's failure, worded as libcni words it: `plugin type="bridge" failed (add): msg; details`. */
export function describeError(err: unknown): string {
  const e = toCniError(err);
  return e.details ? `${e.message}; ${e.details}` : e.message;
}

const wrap = (err: unknown, prefix: string) => {
  const e = toCniError(err);
  return new CniError(e.code, `${prefix}: ${e.message}`, e.details, { cause: err });
};

const describePlugin = (p: Obj) => `type=${JSON.stringify(p.type)}${typeof p.name === 'string' && p.name ? ` name=${JSON.stringify(p.name)}` : ''}`;

/** One plugin's stdin: its config with name, cniVersion, prevResult and declared capabilities. */
export function buildPluginConf(list: ConfList, plugin: Obj, prevResult: Obj | undefined, rt: RuntimeConf): string {
  const conf: Obj = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult) conf.prevResult = prevResult;
  const runtimeConfig: Obj = {};
  const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
  for (const [cap, enabled] of Object.entries(caps)) {
    if (enabled && rt.capabilityArgs && Object.hasOwn(rt.capabilityArgs, cap)) runtimeConfig[cap] = rt.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return goMarshal(conf);
}

async function invoke(r: Runner, verb: Verb, plugin: Obj, stdin: string, rt: RuntimeConf): Promise<string> {
  const file = findInPath(String(plugin.type), r.path);
  const env = {
    ...r.env,
    CNI_COMMAND: verb,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_ARGS: rt.args.map(([k, v]) => `${k}=${v}`).join(';'),
    CNI_IFNAME: rt.ifname,
    CNI_PATH: r.path.join(':'),
  };
  return execPlugin(r.exec, file, { env, input: stdin, unexplained: libcniUnexplained });
}

/** libcni's pluginErr words for a plugin that failed without a CNI error on stdout. */
function libcniUnexplained(how: string, stdout: string): CniError {
  if (stdout.trim() === '') return new CniError(ErrorCode.internal, `netplugin failed with no error message: ${how}`);
  return new CniError(ErrorCode.internal, `netplugin failed but error parsing its diagnostic message ${JSON.stringify(stdout.slice(0, 4096))}`);
}

function parseAddResult(stdout: string, cniVersion: string): Obj {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch (err) {
    throw new CniError(ErrorCode.decodingFailure, `decoding version from network config: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CniError(ErrorCode.decodingFailure, 'plugin result is not a JSON object');
  return toGoResult(raw as Obj, cniVersion);
}

/**
 * ADD every plugin in order, each getting the previous one's result; the final result is cached.
 * Unlike bare libcni, a failed ADD is followed by a DEL of the list, as runtimes do, so an
 * operator's mistake leaves nothing behind.
 */
export async function addNetworkList(r: Runner, list: ConfList, rt: RuntimeConf): Promise<Obj> {
  const cleanUp = () => (wasAttached(r, list, rt) ? Promise.resolve() : delNetworkList(r, list, rt).catch(() => {}));
  let result: Obj | undefined;
  for (const plugin of list.plugins) {
    try {
      result = parseAddResult(await invoke(r, 'ADD', plugin, buildPluginConf(list, plugin, result, rt), rt), list.cniVersion);
    } catch (err) {
      const failure = wrap(err, `plugin ${describePlugin(plugin)} failed (add)`);
      await cleanUp();
      throw failure;
    }
  }
  try {
    writeCacheEntry(r.cacheDir, list.name, list.bytes, rt, result!);
  } catch (err) {
    await cleanUp();
    throw new CniError(ErrorCode.ioFailure, `failed to set network "${list.name}" cached result`, (err as Error).message);
  }
  return result!;
}

/** A repeated ADD must not tear down the attachment that already works. */
function wasAttached(r: Runner, list: ConfList, rt: RuntimeConf): boolean {
  try {
    return readCacheEntry(r.cacheDir, list.name, rt) !== undefined;
  } catch {
    return true;
  }
}

function cachedResult(entry: CachedAttachment | undefined, version: string): Obj | undefined {
  return entry?.result ? goResultAsVersion(entry.result, version) : undefined;
}

export async function checkNetworkList(r: Runner, list: ConfList, rt: RuntimeConf): Promise<void> {
  if (!allowsVerb(list.cniVersion || UNVERSIONED, 'CHECK')) {
    throw new CniError(ErrorCode.incompatibleVersion, `configuration version "${list.cniVersion}" does not support the CHECK command`);
  }
  if (list.disableCheck) return;
  let prev: Obj | undefined;
  try {
    prev = cachedResult(readCacheEntry(r.cacheDir, list.name, rt), list.cniVersion);
  } catch (err) {
    throw new CniError(ErrorCode.ioFailure, `failed to get network "${list.name}" cached result`, (err as Error).message);
  }
  for (const plugin of list.plugins) {
    await invoke(r, 'CHECK', plugin, buildPluginConf(list, plugin, prev, rt), rt);
  }
}

/** DEL in reverse order with the cached result as prevResult (0.4.0+); a corrupt cache is skipped. */
export async function delNetworkList(r: Runner, list: ConfList, rt: RuntimeConf): Promise<void> {
  let prev: Obj | undefined;
  // prevResult on DEL came with CHECK, in 0.4.0
  if (allowsVerb(list.cniVersion || UNVERSIONED, 'CHECK')) {
    try {
      prev = cachedResult(readCacheEntry(r.cacheDir, list.name, rt), list.cniVersion);
    } catch {
      prev = undefined;
    }
  }
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await invoke(r, 'DEL', plugin, buildPluginConf(list, plugin, prev, rt), rt);
    } catch (err) {
      throw wrap(err, `plugin ${describePlugin(plugin)} failed (delete)`);
    }
  }
  removeCacheEntry(r.cacheDir, list.name, rt);
}

export interface GcReport {
  deleted: { containerID: string; ifname: string; error?: string }[];
  /** Whether plugins were sent GC (cniVersion 1.1.0 and later). */
  pluginsCalled: boolean;
  errors: string[];
}

/**
 * libcni's GCNetworkList: DEL every cached attachment of this network that is not valid (with its
 * cached netns, CNI_ARGS and capability args), then send GC with `cni.dev/valid-attachments`.
 */
export async function gcNetworkList(r: Runner, list: ConfList, cached: readonly CachedAttachment[], valid: readonly GcAttachment[]): Promise<GcReport> {
  const report: GcReport = { deleted: [], pluginsCalled: false, errors: [] };
  if (list.disableGC) return report;
  const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
  for (const a of cached) {
    if (a.networkName !== list.name || keep.has(`${a.containerId}/${a.ifName}`)) continue;
    const rt: RuntimeConf = { containerId: a.containerId, netns: a.netns ?? '', ifname: a.ifName, args: a.cniArgs ?? [], capabilityArgs: a.capabilityArgs };
    const gone = { containerID: a.containerId, ifname: a.ifName };
    try {
      await delNetworkList(r, list, rt);
      report.deleted.push(gone);
    } catch (err) {
      const error = `failed to delete stale attachment ${a.containerId} ${a.ifName}: ${describeError(err)}`;
      report.deleted.push({ ...gone, error });
      report.errors.push(error);
    }
  }
  if (allowsVerb(list.cniVersion || UNVERSIONED, 'GC')) {
    report.pluginsCalled = true;
    const none: RuntimeConf = { containerId: '', netns: '', ifname: '', args: [] };
    for (const plugin of list.plugins) {
      const stdin = goMarshal({ ...plugin, name: list.name, cniVersion: list.cniVersion, 'cni.dev/valid-attachments': valid });
      try {
        await invoke(r, 'GC', plugin, stdin, none);
      } catch (err) {
        report.errors.push(`failed to GC plugin ${String(plugin.type)}: ${describeError(err)}`);
      }
    }
  }
  return report;
}

/** STATUS of every plugin in order (1.1.0+); the first failure is the answer. */
export async function statusNetworkList(r: Runner, list: ConfList): Promise<boolean> {
  if (!allowsVerb(list.cniVersion || UNVERSIONED, 'STATUS')) return false;
  const none: RuntimeConf = { containerId: '', netns: '', ifname: '', args: [] };
  for (const plugin of list.plugins) {
    await invoke(r, 'STATUS', plugin, goMarshal({ ...plugin, name: list.name, cniVersion: list.cniVersion }), none);
  }
  return true;
}
