import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonObject } from './netconf.ts';
import { createContext, runVerb, type Invocation } from './context.ts';
import { CniError, ErrorCode, toCniError } from './errors.ts';
import type { DelegateCommand } from './plugin.ts';
import type { Result } from './result.ts';
import { ProcessError } from '../exec.ts';

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

/**
 * Runs a delegated plugin as the spec's section 4 says: same environment, the full config on stdin,
 * its stderr passed through; a failed ADD is followed by a DEL of the delegate before failing.
 */
export async function delegate(inv: Invocation, type: string, command: DelegateCommand, conf?: Record<string, unknown>): Promise<Result | undefined> {
  const file = findInPath(type, inv.env.path);
  const body = conf ?? inv.conf;
  const ours = inv.self !== undefined && fileIdentity(file) === inv.self ? await inv.resolve(type) : undefined;
  const call = async (cmd: DelegateCommand): Promise<Result | undefined> => {
    if (ours) {
      inv.log.debug('delegate in-process', { type, command: cmd });
      const ctx = createContext({ ...inv, env: { ...inv.env, command: cmd }, conf: { ...body, name: inv.conf.name } });
      return runVerb(ours, ctx);
    }
    inv.log.debug('delegate exec', { type, command: cmd, file });
    return execDelegate(inv, file, cmd, body);
  };
  try {
    return await call(command);
  } catch (err) {
    if (command === 'ADD') {
      await call('DEL').catch((e) => inv.log.warn('delegate DEL after failed ADD failed', { type, error: toCniError(e).message }));
    }
    throw err;
  }
}

async function execDelegate(inv: Invocation, file: string, command: DelegateCommand, body: Record<string, unknown>): Promise<Result | undefined> {
  const env = { ...inv.rawEnv, CNI_COMMAND: command };
  const out = await inv.exec.runAsync([file], { input: JSON.stringify(body), env, allowFailure: true, inheritStderr: true }).catch((err: unknown) => {
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
