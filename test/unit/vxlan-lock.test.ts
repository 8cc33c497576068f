import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../lib/cni/log.ts';
import { lockDevice, lockFile, parseHolder, runningFromStat } from '../../lib/store/file-lock.ts';
import { sameRecord } from '../../plugins/vxlan/state.ts';

const warnings: string[] = [];
const log: Logger = { error: () => {}, warn: (msg: string) => void warnings.push(msg), info: () => {}, debug: () => {} } as unknown as Logger;

describe('the device lock', () => {
  const dirs: string[] = [];
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    cleanups.splice(0).forEach((f) => f());
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
    warnings.length = 0;
  });
  const stateDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'vxlan-lock-'));
    dirs.push(d);
    return join(d, 'state');
  };

  it('reads a holder pid only from a complete lock file', () => {
    expect(parseHolder('1234\n')).toBe(1234);
    expect(parseHolder('1234 7\n')).toBe(1234);
    for (const bad of ['', '12', '0\n', '-1\n', '12 x\n', '12 34', 'abc\n', '12345678901\n']) expect(parseHolder(bad), JSON.stringify(bad)).toBeUndefined();
  });

  it('tells a running process from a zombie, a dead one or none, whatever its command name', () => {
    expect(runningFromStat('42 (sleep) S 1 42 42 0 -1')).toBe(true);
    expect(runningFromStat('42 (a) b) (c) R 1 42 42 0 -1')).toBe(true);
    expect(runningFromStat('42 (a) Z) Z 1 42 42 0 -1')).toBe(false);
    expect(runningFromStat('42 (tscni) X 1')).toBe(false);
    expect(runningFromStat(undefined)).toBe(false);
    expect(runningFromStat(readFileSync('/proc/self/stat', 'utf8'))).toBe(true);
  });

  it('is one O_EXCL file with our pid, root-only, in a state dir it makes; release removes it', async () => {
    const d = stateDir();
    const lock = await lockDevice(d, 'tscni.1', log);
    expect(lock.exclusive).toBe(true);
    expect(lock.mine()).toBe(true);
    expect(readFileSync(lockFile(d, 'tscni.1'), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
    expect(statSync(lockFile(d, 'tscni.1')).mode & 0o777).toBe(0o600);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    lock.release();
    expect(readdirSync(d)).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('takes over the lock of a holder that is gone, and leaves nothing of it', async () => {
    const d = stateDir();
    mkdirSync(d, { recursive: true });
    const dead = spawnSync('true').pid!;
    writeFileSync(lockFile(d, 'tscni.1'), `${dead}\n`);
    const lock = await lockDevice(d, 'tscni.1', log);
    expect(lock.exclusive).toBe(true);
    expect(warnings).toEqual(['taking over the lock of a writer that is gone']);
    expect(readdirSync(d)).toEqual(['tscni.1.lock']);
    lock.release();
    expect(readdirSync(d)).toEqual([]);
  });

  it('waits for a live holder; past the bound takes the lock but not exclusively; the holder then finds it is not its own', async () => {
    const d = stateDir();
    const holder = await lockDevice(d, 'tscni.1', log);
    // another writer: the live holder is this process
    const other = await lockDevice(d, 'tscni.1', log, 50);
    expect(other.exclusive).toBe(false);
    expect(other.mine()).toBe(true);
    expect(holder.mine()).toBe(false); // the first holder must not write its record
    holder.release(); // and must not remove the other's lock
    expect(existsSync(lockFile(d, 'tscni.1'))).toBe(true);
    other.release();
    expect(readdirSync(d)).toEqual([]);
  });

  it('gets the lock as soon as a live holder releases it, within the bound', async () => {
    const d = stateDir();
    mkdirSync(d, { recursive: true });
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(() => sleeper.kill('SIGKILL'));
    writeFileSync(lockFile(d, 'tscni.1'), `${sleeper.pid}\n`);
    setTimeout(() => rmSync(lockFile(d, 'tscni.1')), 30);
    const lock = await lockDevice(d, 'tscni.1', log, 60_000);
    expect(lock.exclusive).toBe(true);
    lock.release();
  });

  it('fails with a clear error after the wait bound when the lock path is a directory or a dangling link', async () => {
    for (const plant of ['directory', 'dangling link'] as const) {
      const dir = stateDir();
      mkdirSync(dir, { recursive: true });
      const path = lockFile(dir, 'vx0');
      if (plant === 'directory') mkdirSync(path);
      else symlinkSync(join(dir, 'nowhere'), path);
      const err = await lockDevice(dir, 'vx0', log, 50).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, plant).toMatchObject({ code: 5, message: `lock ${path} is ${plant === 'directory' ? 'a directory' : 'a symbolic link'}, not a lock file` });
      // left as it was: neither followed nor replaced
      expect(lstatSync(path).isDirectory() || lstatSync(path).isSymbolicLink(), plant).toBe(true);
      expect(existsSync(join(dir, 'nowhere')), plant).toBe(false);
    }
  });

  it('a half-written lock (no pid yet) counts as held', async () => {
    const d = stateDir();
    mkdirSync(d, { recursive: true });
    writeFileSync(lockFile(d, 'tscni.1'), '');
    const lock = await lockDevice(d, 'tscni.1', log, 20);
    expect(lock.exclusive).toBe(false);
    lock.release();
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('sameRecord', () => {
  it('is the record written here: same device and same inputs digest', () => {
    expect(sameRecord({ ifindex: 7, digest: 'x' }, { ifindex: 7, digest: 'x' })).toBe(true);
    expect(sameRecord({ ifindex: 8, digest: 'x' }, { ifindex: 7, digest: 'x' })).toBe(false);
    expect(sameRecord({ ifindex: 7, digest: 'y' }, { ifindex: 7, digest: 'x' })).toBe(false);
    expect(sameRecord(undefined, { ifindex: 7, digest: 'x' })).toBe(false);
    expect(sameRecord({ ifindex: 7, digest: undefined }, { ifindex: 7, digest: undefined })).toBe(false);
  });
});
