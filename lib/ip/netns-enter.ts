import { closeSync, openSync, writeSync } from 'node:fs';
import { refuseOwnNetns } from './netns-guard.ts';

/**
 * Runs `inside` with this thread in the network namespace at `path`, then returns to ours. A process
 * spawned inside (Exec spawns synchronously, before its first await) is born in that namespace, and
 * /proc/sys/net written inside is that namespace's: one `ip` exec where `nsenter sh ip` takes three.
 */
export type EnterNetns = <T>(path: string, inside: () => T) => T;

const CLONE_NEWNET = 0x40000000;
let loaded: Promise<EnterNetns | undefined> | undefined;

/**
 * setns(2) through bun:ffi in the compiled binary; undefined under Node, or where libc cannot be
 * loaded (e.g. musl), and callers use nsenter.
 */
export function netnsEnterer(): Promise<EnterNetns | undefined> {
  return (loaded ??= (globalThis as { Bun?: unknown }).Bun ? load().catch(() => undefined) : Promise.resolve(undefined));
}

async function load(): Promise<EnterNetns> {
  const { dlopen, FFIType } = await import('bun:ffi');
  const { setns } = dlopen('libc.so.6', { setns: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } }).symbols;
  // JS runs on the main thread; setns(2) of a network namespace moves only that thread.
  const home = openSync('/proc/thread-self/ns/net', 'r');
  return (path, inside) => {
    refuseOwnNetns(path);
    const target = openSync(path, 'r');
    try {
      if (setns(target, CLONE_NEWNET) !== 0) throw new Error(`cannot enter network namespace ${path}: not a network namespace`);
      try {
        return inside();
      } finally {
        // Every later host operation of this process would land in the container: never go on.
        if (setns(home, CLONE_NEWNET) !== 0) {
          writeSync(2, 'tscni: cannot return to the host network namespace\n');
          process.exit(70);
        }
      }
    } finally {
      closeSync(target);
    }
  };
}
