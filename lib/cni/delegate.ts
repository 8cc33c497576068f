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

/** What running a delegate by exec needs from the invocation. */
export interface ExecDelegateEnv {
  exec: Exec;
  /** The whole environment, passed on with CNI_COMMAND set. */
  rawEnv: Readonly<Record<string, string | undefined>>;
  /** The version the delegate's result is read at. */
  cniVersion: string;
}

/** Runs a delegate plugin file: the env with CNI_COMMAND, the conf on stdin, its error decoded. */
export async function execDelegate(inv: ExecDelegateEnv, file: string, command: DelegateCommand, body: Record<string, unknown>): Promise<Result | undefined> {
  const env = { ...inv.rawEnv, CNI_COMMAND: command };
  const out = await inv.exec.runAsync([file], { input: JSON.stringify(body), env, allowFailure: true, inheritStderr: true, killWithParent: true }).catch((err: unknown) => {
    throw err instanceof ProcessError ? new CniError(ErrorCode.internal, `cannot run delegate ${file}`, err.message) : err;
  });
  if (out.status !== 0) {
    const parsed = safeJson(out.stdout);
    if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
      throw new CniError(parsed.code, parsed.msg, typeof parsed.details === 'string' ? parsed.details : undefined);
    }
    throw new CniError(ErrorCode.internal, `delegate ${file} failed (${out.signal ?? `exit ${out.status}`})`, out.stdout.slice(0, 4096));
  }
  if (command !== 'ADD') return undefined;
  const { parseResult } = await import('./result-parse.ts');
  return parseResult(parseJsonObject(out.stdout, `result of ${file}`), inv.cniVersion);
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}
