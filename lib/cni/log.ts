import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { configPath, configPathProblem } from './config-path.ts';
import { CniError, ErrorCode } from './errors.ts';

export const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: Level): boolean;
}

export interface LogSettings {
  level: Level;
  /** Lines also go to this file (appended), for runtimes that swallow stderr. */
  file?: string;
}

/** Appends, creating the file if needed, but never through a symbolic link at its path. */
const APPEND_NO_LINK = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

const isLevel = (s: string): s is Level => (LEVELS as readonly string[]).includes(s);

const LEVEL_RULE = `the level must be one of ${LEVELS.join(', ')}`;

/**
 * TSCNI_LOG is `LEVEL`, `PATH` or `LEVEL:PATH` (e.g. `debug:/var/log/tscni.log`). The config's
 * `log: {level, file}` applies when the variable is unset. What cannot be used is an error, not
 * silence: code 4 for the variable, 7 for the config key.
 */
export function parseLogSettings(variable: string | undefined, conf?: { level?: unknown; file?: unknown }): LogSettings {
  const settings: LogSettings = { level: 'warn' };
  if (conf?.level !== undefined) {
    if (typeof conf.level !== 'string' || !isLevel(conf.level)) throw new CniError(ErrorCode.invalidConfig, `invalid network config at log.level: ${LEVEL_RULE}`);
    settings.level = conf.level;
  }
  if (conf?.file !== undefined) {
    if (typeof conf.file !== 'string') throw new CniError(ErrorCode.invalidConfig, 'invalid network config at log.file: expected string');
    settings.file = configPath('log.file', conf.file);
  }
  if (!variable) return settings;
  const badVariable = (why: string) => new CniError(ErrorCode.invalidEnvironment, `invalid TSCNI_LOG ${JSON.stringify(variable.slice(0, 64))}: ${why}`, 'TSCNI_LOG is LEVEL, PATH or LEVEL:PATH');
  const colon = variable.indexOf(':');
  const head = colon < 0 ? variable : variable.slice(0, colon);
  const file = variable.startsWith('/') ? variable : colon >= 0 ? variable.slice(colon + 1) : undefined;
  if (variable.startsWith('/')) settings.level = 'info';
  else if (isLevel(head)) settings.level = head;
  else throw badVariable(LEVEL_RULE);
  if (file !== undefined) {
    const problem = configPathProblem(file);
    if (problem) throw badVariable(`the file ${problem}`);
    settings.file = file;
  }
  return settings;
}

/** The settings for reporting a failure: an unusable TSCNI_LOG must not stop the error from being written. */
export function fallbackLogSettings(variable: string | undefined): LogSettings {
  try {
    return parseLogSettings(variable);
  } catch {
    return { level: 'warn' };
  }
}

/** One JSON line per event: on stderr (the runtime's log) and, if set, in the log file. */
export function createLogger(settings: LogSettings, context: Record<string, unknown>, writeStderr: (line: string) => void): Logger {
  const rank = LEVELS.indexOf(settings.level);
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(level) > rank) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...context, ...fields }) + '\n';
    writeStderr(line);
    if (settings.file) {
      try {
        const fd = openSync(settings.file, APPEND_NO_LINK, 0o600);
        try {
          writeSync(fd, line);
        } finally {
          closeSync(fd);
        }
      } catch {
        // a log file we cannot write must never fail the network operation
      }
    }
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    enabled: (level) => LEVELS.indexOf(level) <= rank,
  };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };
