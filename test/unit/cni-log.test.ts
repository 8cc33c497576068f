import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, parseLogSettings } from '../../lib/cni/log.ts';

describe('parseLogSettings (TSCNI_LOG and the conf `log` key)', () => {
  it('defaults to warn on stderr only', () => {
    expect(parseLogSettings(undefined)).toEqual({ level: 'warn' });
    expect(parseLogSettings('')).toEqual({ level: 'warn' });
  });

  it('TSCNI_LOG is LEVEL, PATH or LEVEL:PATH', () => {
    expect(parseLogSettings('debug')).toEqual({ level: 'debug' });
    expect(parseLogSettings('/var/log/tscni.log')).toEqual({ level: 'info', file: '/var/log/tscni.log' });
    expect(parseLogSettings('error:/var/log/tscni.log')).toEqual({ level: 'error', file: '/var/log/tscni.log' });
  });

  it('refuses what it cannot use: code 4 for TSCNI_LOG, 7 for the conf key', () => {
    const bad = (f: () => unknown, code: number, msg: string) => expect(f).toThrow(expect.objectContaining({ code, message: msg }));
    bad(() => parseLogSettings('verbose'), 4, 'invalid TSCNI_LOG "verbose": the level must be one of error, warn, info, debug');
    bad(() => parseLogSettings('debug:relative.log'), 4, 'invalid TSCNI_LOG "debug:relative.log": the file must be an absolute path');
    bad(() => parseLogSettings('/var/log/../../etc/x'), 4, 'invalid TSCNI_LOG "/var/log/../../etc/x": the file must not contain a ".." segment');
    bad(() => parseLogSettings(undefined, { level: 'loud' }), 7, 'invalid network config at log.level: the level must be one of error, warn, info, debug');
    bad(() => parseLogSettings(undefined, { file: 'x.log' }), 7, 'invalid network config at log.file: must be an absolute path');
    bad(() => parseLogSettings(undefined, { file: '/tmp/../etc/x' }), 7, 'invalid network config at log.file: must not contain a ".." segment');
  });

  it('the conf key applies, and TSCNI_LOG overrides it', () => {
    expect(parseLogSettings(undefined, { level: 'debug', file: '/tmp/a.log' })).toEqual({ level: 'debug', file: '/tmp/a.log' });
    expect(parseLogSettings('error', { level: 'debug', file: '/tmp/a.log' })).toEqual({ level: 'error', file: '/tmp/a.log' });
    expect(parseLogSettings('info:/tmp/b.log', { level: 'debug', file: '/tmp/a.log' })).toEqual({ level: 'info', file: '/tmp/b.log' });
  });
});

describe('createLogger', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cni-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes JSON lines at or above its level, with context and fields', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info' }, { plugin: 'p' }, (l) => lines.push(l));
    log.debug('hidden');
    log.info('shown', { a: 1 });
    log.error('bad');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: expect.any(String), level: 'info', msg: 'shown', plugin: 'p', a: 1 },
      { time: expect.any(String), level: 'error', msg: 'bad', plugin: 'p' },
    ]);
    expect(log.enabled('debug')).toBe(false);
    expect(log.enabled('warn')).toBe(true);
  });

  it('appends to the file too', () => {
    const file = join(dir, 'x.log');
    const log = createLogger({ level: 'warn', file }, {}, () => {});
    log.warn('one');
    log.warn('two');
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).msg)).toEqual(['one', 'two']);
  });

  it('never writes through a symbolic link at the log path (planted or dangling), and still logs to stderr', () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'precious\n');
    const planted = join(dir, 'planted.log');
    symlinkSync(target, planted);
    const dangling = join(dir, 'dangling.log');
    symlinkSync(join(dir, 'created-through-link'), dangling);
    for (const file of [planted, dangling]) {
      const lines: string[] = [];
      createLogger({ level: 'warn', file }, {}, (l) => lines.push(l)).warn('hello');
      expect(lines).toHaveLength(1);
      expect(lstatSync(file).isSymbolicLink()).toBe(true);
    }
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(existsSync(join(dir, 'created-through-link'))).toBe(false);
  });
});
