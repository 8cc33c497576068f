/**
 * The decisions of the node step, pure: what a writer may trust, what it must read and what it
 * leaves behind, from what it observed. writer.ts does the I/O around them (observe → decide → apply).
 */

/**
 * How a reconcile finds what the device holds:
 * - `full` reads every route, neighbour and FDB entry of the device and applies the difference:
 *   it repairs anything changed behind our back (`sync --full`, `sync --watch` at start and every 30 s);
 * - `sync` diffs against the applied record when it is usable (the same device, as specified):
 *   one change among 1,000 peers costs no read of 3,000 entries; otherwise it reads as `full`.
 *   A watch event is a `sync` whose record is the one the watcher wrote;
 * - `add` skips the peer step when the record's digest is that of the inputs; otherwise it reads as `full`.
 * Every reconcile runs under the device's lock (see lock.ts); only `add`'s skip takes none.
 */
export type ReconcileMode = 'full' | 'sync' | 'add';

/**
 * The device lock as a writer holds it: not yet (an ADD's first look), alone, or taken over from a
 * live holder past the wait bound (`shared`: another writer may be changing entries).
 */
export type LockHold = 'none' | 'exclusive' | 'shared';

/** What a writer observed before deciding. */
export interface NodeFacts {
  mode: ReconcileMode;
  lock: LockHold;
  /** `peersDigest` of the inputs read now; undefined when the source could not be read. */
  digest: string | undefined;
  /** The applied record found (or the one a watcher wrote), and whether it describes the device as it is. */
  record: { digest: string | undefined; usable: boolean } | undefined;
  /** What the kernel reads so far hold: nothing, the links, or the links and the device's entries. */
  kernel: 'none' | 'links' | 'node';
  /** The links read show the device (unused when `kernel` is `none`). */
  deviceExists: boolean;
  /** Peer inputs were read; without them the entries stay as they are. */
  hasInputs: boolean;
}

/** Whether to skip the peer step (the inputs are applied already), take the lock first, or reconcile. */
export type EntryStep = 'skip' | 'lock' | 'reconcile';

export function decideEntry(f: NodeFacts): EntryStep {
  const applied = f.mode === 'add' && f.digest !== undefined && f.record?.digest === f.digest && f.record.usable;
  if (f.lock === 'none') return applied ? 'skip' : 'lock';
  // under the lock too: another ADD may just have applied these same inputs
  return applied && f.lock === 'exclusive' ? 'skip' : 'reconcile';
}

/**
 * What the kernel read must add before a reconcile from the kernel: `none` (all read already),
 * `empty` (the device does not exist: it holds no entries), `node` (links and entries, read
 * again under the lock), `peers` (the entries; the links read under the lock stand).
 */
export type KernelRead = 'none' | 'empty' | 'node' | 'peers';

export interface ReconcilePlan {
  /** Remove the record first: without the lock alone, no record is trusted or left. */
  forgetRecord: boolean;
  /** Apply the difference from the record, without reading the kernel (on failure, reconcile from it). */
  diffRecord: boolean;
  /** How to read the kernel when reconciling from it. */
  read: KernelRead;
}

export function decideReconcile(f: NodeFacts): ReconcilePlan {
  return {
    forgetRecord: f.lock !== 'exclusive',
    diffRecord: f.mode === 'sync' && f.lock === 'exclusive' && f.record?.usable === true && f.hasInputs,
    read: kernelRead(f),
  };
}

function kernelRead(f: NodeFacts): KernelRead {
  if (f.kernel === 'node') return 'none';
  if (f.kernel === 'none') return 'node';
  if (!f.deviceExists) return 'empty';
  // an ADD read the links before it held the lock
  return f.mode === 'add' ? 'node' : 'peers';
}

/** What a reconcile did, as the record decision needs it. */
export interface RecordFacts {
  lock: Exclude<LockHold, 'none'>;
  /** The lock file still names this writer: nobody took it over meanwhile. */
  mine: boolean;
  /** The reconcile knows which peers are now on the device (false: they were left as they were). */
  known: boolean;
  diff: 'kernel' | 'state';
  changed: number;
  removed: number;
  /** The digest of the record diffed against, and of the inputs applied. */
  recordDigest: string | undefined;
  digest: string | undefined;
}

/**
 * `write` the record of what is applied, `keep` the one there (it says what was applied already,
 * or the peers are unknown: a batch that changed entries removed it first), or `forget` it: a
 * writer whose lock was not its own alone, or was taken over, leaves no record.
 */
export type RecordStep = 'write' | 'keep' | 'forget';

export function decideRecord(f: RecordFacts): RecordStep {
  if (f.lock !== 'exclusive' || !f.mine) return 'forget';
  const same = f.diff === 'state' && f.changed === 0 && f.removed === 0 && f.recordDigest === f.digest;
  return f.known && !same ? 'write' : 'keep';
}
