import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonObject } from './netconf.ts';
import { CniError, ErrorCode } from './errors.ts';
import type { DelegateCommand } from './plugin.ts';
import type { Result } from './result.ts';
import { ProcessError, type Exec } from '../exec.ts';

const PLUGIN_TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** dev:ino of a file, or undefined when it does not exist. */
export function fileIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export function findInPath(type: string, dirs: readonly string[]): string {
  if (!PLUGIN_TYPE.test(type) || type.length > 255) {
    throw new CniError(ErrorCode.invalidConfig, `invalid plugin type ${JSON.stringify(type.slice(0, 64))}`);
  }
  for (const dir of dirs) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(ErrorCode.invalidConfig, `failed to find plugin "${type}" in path [${dirs.join(' ')}]`);
}

/** One run of a plugin executable. */
export interface PluginCall {
  /** The whole environment the plugin gets, CNI_COMMAND and the other CNI_* included. */
  env: Readonly<Record<string, string | undefined>>;
  /** Its config, on stdin. */
  input: string;
  /**
   * The error for a plugin that failed without a CNI error on stdout; `how` is the signal or
   * `exit N`. Callers word it for their readers (a delegate's caller, libcni's words in the CLI).
   */
  unexplained: (how: string, stdout: string) => CniError;
}

/**
 * Runs a plugin as the spec says (section 3): env, config on stdin, stderr passed through, stdout
 * returned. A plugin is any program and may block, so it dies with us. A failure is the plugin's
 * own error when stdout holds one (`decodePluginError`), else `call.unexplained`.
 */
export async function execPlugin(exec: Exec, file: string, call: PluginCall): Promise<string> {
  const out = await exec.runAsync([file], { input: call.input, env: call.env, allowFailure: true, inheritStderr: true, killWithParent: true }).catch((err: unknown) => {
    throw err instanceof ProcessError ? new CniError(ErrorCode.internal, `cannot run plugin ${file}`, err.message) : err;
  });
  if (out.status === 0) return out.stdout;
  throw decodePluginError(out.stdout) ?? call.unexplained(out.signal ?? `exit ${out.status}`, out.stdout);
}

/**
 * A failed plugin's `{code, msg, details}` from its stdout, as libcni's pluginErr reads it: a JSON
 * object with a numeric code or a string msg (a missing code is 999). Undefined when there is none.
 */
export function decodePluginError(stdout: string): CniError | undefined {
  let e: unknown;
  try {
    e = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return undefined;
  const { code, msg, details } = e as Record<string, unknown>;
  if (typeof code !== 'number' && typeof msg !== 'string') return undefined;
  return new CniError(typeof code === 'number' ? code : ErrorCode.internal, typeof msg === 'string' ? msg : '', typeof details === 'string' && details ? details : undefined);
}

/** What running a delegate by exec needs from the invocation. */
export interface ExecDelegateEnv {
  exec: Exec;
  /** The whole environment, passed on with CNI_COMMAND set. */
  rawEnv: Readonly<Record<string, string | undefined>>;
  /** The version the delegate's result is read at. */
  cniVersion: string;
}

/** Runs a delegate plugin file: the invocation's env with CNI_COMMAND, the conf on stdin. */
export async function execDelegate(inv: ExecDelegateEnv, file: string, command: DelegateCommand, body: Record<string, unknown>): Promise<Result | undefined> {
  const stdout = await execPlugin(inv.exec, file, {
    env: { ...inv.rawEnv, CNI_COMMAND: command },
    input: JSON.stringify(body),
    unexplained: (how, out) => new CniError(ErrorCode.internal, `delegate ${file} failed (${how})`, out.slice(0, 4096)),
  });
  if (command !== 'ADD') return undefined;
  const { parseResult } = await import('./result-parse.ts');
  return parseResult(parseJsonObject(stdout, `result of ${file}`), inv.cniVersion);
}
