import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../../lib/store/atomic-file.ts';

describe('writeFileAtomic', () => {
  const dirs: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'atomic-'));
    dirs.push(d);
    return d;
  };

  it('replaces the file in one step, 0600, and leaves no temporary file', () => {
    const d = dir();
    const file = join(d, 'sub', 'state.json');
    writeFileAtomic(file, 'one');
    writeFileAtomic(file, 'two');
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, 'sub')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(d, 'sub'))).toEqual(['state.json']);
  });

  it('uses a random temporary name, not one derived from the pid', () => {
    const d = dir();
    const file = join(d, 'state.json');
    // the name the writer used to take: a link planted there is never touched
    const target = join(d, 'target');
    writeFileSync(target, 'precious');
    symlinkSync(target, `${file}.tmp-${process.pid}`);
    writeFileAtomic(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });

  it('never writes through a link planted at its temporary name: the write fails, the target and the file stay', () => {
    const d = dir();
    const file = join(d, 'state.json');
    writeFileSync(file, 'old');
    const target = join(d, 'target');
    writeFileSync(target, 'precious');
    const dangling = join(d, 'created-through-link');
    // make the "random" suffix known, as an attacker who guessed it would
    vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation((a) => {
      (a as Uint8Array).fill(0xab);
      return a;
    });
    const tmp = `${file}.tmp-abababababab`;
    for (const to of [target, dangling]) {
      symlinkSync(to, tmp);
      expect(() => writeFileAtomic(file, 'evil')).toThrow(/EEXIST|ELOOP/);
      expect(lstatSync(tmp).isSymbolicLink()).toBe(true);
      rmSync(tmp);
    }
    expect(readFileSync(target, 'utf8')).toBe('precious');
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(d).sort()).toEqual(['state.json', 'target']);
  });
});
