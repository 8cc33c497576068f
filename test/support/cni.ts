import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CNITOOL } from './paths.ts';

export interface PluginRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty/not JSON. */
  json: any;
}

/** `text` parsed as JSON, or undefined when it is empty or not JSON. */
export function jsonOrUndefined(text: string): any {
  try {
    return text.trim() ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

export interface ExecEnv {
  CNI_COMMAND: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
  [key: string]: string | undefined;
}

/** Execs one plugin binary directly, as a runtime does: env + config on stdin. */
export function execPlugin(file: string, env: ExecEnv, conf: unknown): PluginRun {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  if (process.env.TSCNI_LOG) base.TSCNI_LOG = process.env.TSCNI_LOG;
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const r = spawnSync(file, [], { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env: { ...base, ...clean }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json: jsonOrUndefined(r.stdout ?? '') };
}

export interface CnitoolEnv {
  confDir: string;
  pluginDir: string;
  cacheDir: string;
  ifname?: string;
  args?: string;
  capArgs?: unknown;
  containerId?: string;
  /** Run inside this /run/netns namespace (`ip netns exec`), as a runtime on a simulated node. */
  netns?: string;
}

/** Writes a conflist (or conf) into confDir as NAME.conflist. */
export function writeConflist(confDir: string, conflist: { name: string } & Record<string, unknown>): string {
  mkdirSync(confDir, { recursive: true });
  const file = join(confDir, `${conflist.name}.${'plugins' in conflist ? 'conflist' : 'conf'}`);
  writeFileSync(file, JSON.stringify(conflist, null, 2));
  return file;
}

/** Runs the real libcni client: `cnitool add|check|del NET NETNS`. */
export function cnitool(verb: 'add' | 'check' | 'del', net: string, netnsPath: string, e: CnitoolEnv): PluginRun {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    NETCONFPATH: e.confDir,
    CNI_PATH: e.pluginDir,
    CNI_CACHEDIR: e.cacheDir,
  };
  if (e.ifname) env.CNI_IFNAME = e.ifname;
  if (e.args) env.CNI_ARGS = e.args;
  if (e.capArgs !== undefined) env.CAP_ARGS = JSON.stringify(e.capArgs);
  if (e.containerId) env.CNI_CONTAINERID = e.containerId;
  if (process.env.TSCNI_LOG) env.TSCNI_LOG = process.env.TSCNI_LOG;
  const argv = [...(e.netns ? ['ip', 'netns', 'exec', e.netns] : []), CNITOOL, verb, net, netnsPath];
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json: jsonOrUndefined(r.stdout ?? '') };
}
