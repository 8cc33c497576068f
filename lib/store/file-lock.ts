import { linkSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Logger } from '../cni/log.ts';
import { writeFileAtomic } from './atomic-file.ts';

/**
 * One writer at a time per device: whoever reads what is applied (the record or the kernel), changes
 * peer entries and writes the applied record holds `<stateDir>/<device>.lock`, created with O_EXCL
 * and holding its pid. Nothing can leave a node stuck: a dead holder's lock is taken over, and after
 * `LOCK_WAIT_MS` a live holder's is taken too, but then not `exclusive`: that writer reads the
 * kernel and leaves no record, and the holder, finding the lock no longer its own, writes none either.
 */
export interface DeviceLock {
  /** Held alone from the start: what this writer read stays true until it releases. */
  readonly exclusive: boolean;
  /** The lock file still names this process (nobody took it over): check just before writing the record. */
  mine(): boolean;
  /** Removes the lock file if it is still ours. */
  release(): void;
}

export const LOCK_WAIT_MS = 3000;

export const lockFile = (stateDir: string, device: string) => join(stateDir, `${device}.lock`);

/**
 * The pid in a lock file's text (`PID SEQ`: SEQ tells this process's acquisitions apart), or
 * undefined while it is being written.
 */
export function parseHolder(text: string): number | undefined {
  const m = /^([1-9]\d{0,9})(?: \d+)?\n$/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether a process runs under `pid`, from `/proc/PID/stat`: absent, a zombie or dead (state Z, X)
 * is gone. The command name may hold spaces and parentheses: the state follows the last ')'.
 */
export function runningFromStat(stat: string | undefined): boolean {
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== '' && state !== 'Z' && state !== 'X';
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const running = (pid: number) => runningFromStat(readText(`/proc/${pid}/stat`));

let acquisitions = 0;

export async function lockDevice(stateDir: string, device: string, log: Logger, waitMs = LOCK_WAIT_MS): Promise<DeviceLock> {
  const path = lockFile(stateDir, device);
  const me = `${process.pid} ${++acquisitions}\n`;
  const lock = (exclusive: boolean): DeviceLock => ({
    exclusive,
    mine: () => readText(path) === me,
    release() {
      if (readText(path) === me) rmSync(path, { force: true });
    },
  });
  const deadline = performance.now() + waitMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    if (create(stateDir, path, me)) return lock(true);
    const text = readText(path);
    if (text === undefined && !present(path) && performance.now() < deadline) continue; // released meanwhile
    const holder = text === undefined ? undefined : parseHolder(text);
    if (text !== undefined && holder !== undefined && !running(holder)) {
      log.warn('taking over the lock of a writer that is gone', { lock: path, pid: holder });
      if (takeOver(path, text)) continue;
    }
    if (performance.now() >= deadline) {
      // unreadable after the whole wait: not a lock released meanwhile but something else at its path
      if (text === undefined) throw notALock(path);
      log.warn('lock still held after the wait bound; reconciling from the kernel without a record', { lock: path, pid: holder ?? null, waitedMs: waitMs });
      replace(path, me);
      return lock(false);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Whether anything (even a dangling link) is at `path`. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** What sits at the lock path where a lock file should be (a directory, a dangling link…). */
function notALock(path: string): CniError {
  let what = 'unreadable';
  try {
    const st = lstatSync(path);
    what = st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
  } catch (err) {
    what = `unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  return new CniError(ErrorCode.ioFailure, `lock ${path} is ${what}, not a lock file`, 'remove it; the lock is a regular file the plugin creates');
}

/** O_CREAT|O_EXCL: true when the lock is now ours; makes the state dir on first use. */
function create(stateDir: string, path: string, me: string): boolean {
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, me, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'ENOENT' || attempt > 0) throw err;
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    }
  }
}

/**
 * Moves the dead holder's lock aside (rename: only one contender gets it). If what was moved is
 * not that lock any more (another contender took it over and holds it now), it is put back.
 * False when the lock could not be moved (the caller then waits as for a live holder).
 */
function takeOver(path: string, seen: string): boolean {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'; // gone already: try again
  }
  if (readText(aside) !== seen) {
    try {
      linkSync(aside, path);
    } catch {
      // a third writer locked meanwhile: the one moved aside sees its lock gone and writes no record
    }
  }
  rmSync(aside, { force: true });
  return true;
}

/** Puts our pid in the lock file in one step (temp + rename): the holder then finds it is not its own. */
const replace = (path: string, me: string): void => writeFileAtomic(path, me);
