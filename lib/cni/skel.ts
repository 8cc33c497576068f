import { parseJsonObject, readNetConf } from './netconf.ts';
import { parseEnv } from './env.ts';
import { CniError, ErrorCode, toCniError } from './errors.ts';
import type { Exec } from '../exec.ts';
import { createLogger, fallbackLogSettings, parseLogSettings, type Logger } from './log.ts';
import { createContext, runVerb } from './context.ts';
import type { Plugin, PluginResolver } from './plugin.ts';
import { convertResult } from './result.ts';
import { allowsVerb, isSupported, LATEST_VERSION, SUPPORTED_VERSIONS, UNVERSIONED, VERB_SINCE } from './versions.ts';

/** The process as seen by the core: injected, so the whole protocol runs in unit tests. */
export interface PluginIo {
  env: Readonly<Record<string, string | undefined>>;
  /** At most `limit` bytes of stdin: raw bytes (the core decodes them) or, from tests, text. */
  readStdin(limit: number): Uint8Array | string;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
  exec: Exec;
  resolve: PluginResolver;
  self: string | undefined;
}

export const MAX_STDIN = 16 * 1024 * 1024;

// ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it as Go's decoder does
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** stdin as text; `valid` is false for bytes that are not UTF-8 (the text then has U+FFFD in their place). */
function decodeStdin(input: Uint8Array | string): { text: string; valid: boolean } {
  if (typeof input === 'string') return { text: input, valid: true };
  try {
    return { text: utf8.decode(input), valid: true };
  } catch {
    return { text: new TextDecoder('utf-8', { ignoreBOM: true }).decode(input), valid: false };
  }
}

const byteLength = (input: Uint8Array | string) => (typeof input === 'string' ? Buffer.byteLength(input) : input.length);

/** Runs one CNI invocation of `plugin` and returns the exit code. Never throws. */
export async function runPlugin(plugin: Plugin, io: PluginIo): Promise<number> {
  let cniVersion: string | undefined;
  let log: Logger | undefined;
  try {
    let input: Uint8Array | string;
    try {
      input = io.readStdin(MAX_STDIN + 1);
    } catch (err) {
      throw new CniError(ErrorCode.ioFailure, `error reading from stdin: ${(err as Error).message}`);
    }
    const decoded = decodeStdin(input);
    const stdin = decoded.text;
    cniVersion = sniffVersion(stdin);
    const env = parseEnv(io.env);
    if (env.command === 'VERSION') {
      io.writeStdout(JSON.stringify({ cniVersion: cniVersion ?? LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS }));
      return 0;
    }
    if (byteLength(input) > MAX_STDIN) throw new CniError(ErrorCode.ioFailure, `network config larger than ${MAX_STDIN} bytes`);
    if (!decoded.valid) throw new CniError(ErrorCode.decodingFailure, 'cannot decode network config: not valid UTF-8');
    const raw = parseJsonObject(stdin);
    const conf = readNetConf(raw);
    const version = conf.cniVersion ?? UNVERSIONED;
    if (!isSupported(version)) {
      throw new CniError(ErrorCode.incompatibleVersion, 'incompatible CNI versions', `config is ${JSON.stringify(version)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
    }
    if (!allowsVerb(version, env.command)) {
      const since = VERB_SINCE[env.command as keyof typeof VERB_SINCE];
      throw new CniError(ErrorCode.incompatibleVersion, `config version ${version} does not allow ${env.command}`, `${env.command} needs cniVersion ${since} or later`);
    }
    const logConf = typeof raw.log === 'object' && raw.log !== null ? (raw.log as Record<string, unknown>) : undefined;
    log = createLogger(parseLogSettings(io.env.TSCNI_LOG, logConf), { plugin: plugin.name, command: env.command, containerId: env.containerId || undefined, ifname: env.ifname || undefined }, io.writeStderr);
    const prevResult = conf.prevResult === undefined || conf.prevResult === null ? undefined : (await import('./result-parse.ts')).parseResult(conf.prevResult, version);
    const ctx = createContext({ env, rawEnv: io.env, conf, cniVersion: version, prevResult, exec: io.exec, log, resolve: io.resolve, self: io.self, fault: io.env.TSCNI_FAULT || undefined });
    log.debug('start', { netns: env.netns || undefined, cniVersion: version });
    const result = await runVerb(plugin, ctx);
    await io.exec.endChildren?.();
    if (env.command === 'ADD') {
      if (!result) throw new CniError(ErrorCode.internal, `${plugin.name} returned no result`);
      io.writeStdout(JSON.stringify(convertResult(result, version)));
    }
    log.debug('done');
    return 0;
  } catch (err) {
    // a failed step may leave siblings running: none may outlive the answer (or act after its undo)
    await io.exec.endChildren?.();
    const cniErr = toCniError(err);
    (log ?? createLogger(fallbackLogSettings(io.env.TSCNI_LOG), { plugin: plugin.name }, io.writeStderr)).error(cniErr.message, {
      code: cniErr.code,
      details: cniErr.details,
      ...(cniErr.code === ErrorCode.internal && err instanceof Error && err.stack ? { stack: err.stack } : {}),
    });
    io.writeStdout(JSON.stringify(cniErr.toJSON(cniVersion)));
    return 1;
  }
}

/** The config's cniVersion if it can be read at all: errors echo it back, as the spec asks. */
function sniffVersion(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown })?.cniVersion;
    return typeof v === 'string' && v.length < 32 ? v : undefined;
  } catch {
    return undefined;
  }
}
