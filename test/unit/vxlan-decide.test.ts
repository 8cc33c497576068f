import { describe, expect, it } from 'vitest';
import { decideEntry, decideReconcile, decideRecord, type NodeFacts, type RecordFacts } from '../../plugins/vxlan/decide.ts';

/** Facts of an ADD that found its inputs applied, before any lock: each case changes what it names. */
const base: NodeFacts = { mode: 'add', lock: 'none', digest: 'd1', record: { digest: 'd1', usable: true }, kernel: 'links', deviceExists: true, hasInputs: true };
const facts = (change: Partial<NodeFacts>): NodeFacts => ({ ...base, ...change });

describe('decideEntry: skip the peer step, take the lock, or reconcile', () => {
  const cases: [string, Partial<NodeFacts>, ReturnType<typeof decideEntry>][] = [
    ['ADD, record of these inputs, device as specified: skip without the lock', {}, 'skip'],
    ['ADD, record of other inputs: lock', { record: { digest: 'd0', usable: true } }, 'lock'],
    ['ADD, record of these inputs but the device changed: lock', { record: { digest: 'd1', usable: false } }, 'lock'],
    ['ADD, no record: lock', { record: undefined }, 'lock'],
    ['ADD, source unreadable (no digest): lock', { digest: undefined, hasInputs: false }, 'lock'],
    ['ADD, record without a digest, inputs unreadable: lock', { digest: undefined, record: { digest: undefined, usable: true } }, 'lock'],
    ['ADD under the lock, another ADD applied these inputs: skip', { lock: 'exclusive' }, 'skip'],
    ['ADD under the lock, record of other inputs: reconcile', { lock: 'exclusive', record: { digest: 'd0', usable: true } }, 'reconcile'],
    ['ADD under a taken-over lock: reconcile even with a matching record', { lock: 'shared' }, 'reconcile'],
    ['sync under the lock never skips (it diffs, and changes nothing)', { mode: 'sync', lock: 'exclusive' }, 'reconcile'],
    ['full under the lock never skips', { mode: 'full', lock: 'exclusive', kernel: 'node' }, 'reconcile'],
  ];
  for (const [what, change, expected] of cases) it(what, () => expect(decideEntry(facts(change))).toBe(expected));
});

describe('decideReconcile: forget the record, diff against it, and what to read of the kernel', () => {
  const cases: [string, Partial<NodeFacts>, ReturnType<typeof decideReconcile>][] = [
    ['sync with a usable record: diff against it; on failure read the entries', { mode: 'sync', lock: 'exclusive' }, { forgetRecord: false, diffRecord: true, read: 'peers' }],
    ['sync with an unusable record: read the entries (the links were read under the lock)', { mode: 'sync', lock: 'exclusive', record: { digest: 'd1', usable: false } }, { forgetRecord: false, diffRecord: false, read: 'peers' }],
    ['sync without a record and no device: nothing to read', { mode: 'sync', lock: 'exclusive', record: undefined, deviceExists: false }, { forgetRecord: false, diffRecord: false, read: 'empty' }],
    ['sync without peer inputs: no diff (the entries stay)', { mode: 'sync', lock: 'exclusive', hasInputs: false, digest: undefined }, { forgetRecord: false, diffRecord: false, read: 'peers' }],
    ['sync under a taken-over lock: forget the record, trust none, read the kernel', { mode: 'sync', lock: 'shared' }, { forgetRecord: true, diffRecord: false, read: 'peers' }],
    ['full: everything was read already, no diff even with a usable record', { mode: 'full', lock: 'exclusive', kernel: 'node' }, { forgetRecord: false, diffRecord: false, read: 'none' }],
    ['full under a taken-over lock: forget the record', { mode: 'full', lock: 'shared', kernel: 'node', record: undefined }, { forgetRecord: true, diffRecord: false, read: 'none' }],
    ['ADD: read links and entries again (the links were read before the lock)', { lock: 'exclusive', record: { digest: 'd0', usable: true } }, { forgetRecord: false, diffRecord: false, read: 'node' }],
    ['ADD, no device before the lock: nothing to read', { lock: 'exclusive', record: undefined, deviceExists: false }, { forgetRecord: false, diffRecord: false, read: 'empty' }],
    ['ADD under a taken-over lock: forget the record', { lock: 'shared', record: undefined }, { forgetRecord: true, diffRecord: false, read: 'node' }],
    ['watch event, its record still on disk: diff against it; on failure read links and entries', { mode: 'sync', lock: 'exclusive', kernel: 'none', digest: undefined }, { forgetRecord: false, diffRecord: true, read: 'node' }],
    ['watch event, record changed by another writer: read links and entries', { mode: 'sync', lock: 'exclusive', kernel: 'none', digest: undefined, record: { digest: 'd1', usable: false } }, { forgetRecord: false, diffRecord: false, read: 'node' }],
    ['watch event under a taken-over lock', { mode: 'sync', lock: 'shared', kernel: 'none', digest: undefined, record: { digest: 'd1', usable: false } }, { forgetRecord: true, diffRecord: false, read: 'node' }],
  ];
  for (const [what, change, expected] of cases) it(what, () => expect(decideReconcile(facts(change))).toEqual(expected));
});

describe('decideRecord: write, keep or forget the applied record after the batch', () => {
  const done: RecordFacts = { lock: 'exclusive', mine: true, known: true, diff: 'kernel', changed: 3, removed: 1, recordDigest: undefined, digest: 'd1' };
  const cases: [string, Partial<RecordFacts>, ReturnType<typeof decideRecord>][] = [
    ['reconciled from the kernel under its own lock: write', {}, 'write'],
    ['reconciled from the kernel, nothing changed: still write (no record said so)', { changed: 0, removed: 0 }, 'write'],
    ['the lock was taken over meanwhile: forget, whatever was applied', { mine: false }, 'forget'],
    ['a taken-over lock from the start: forget', { lock: 'shared' }, 'forget'],
    ['a taken-over lock that is still ours: forget', { lock: 'shared', mine: true }, 'forget'],
    ['peers unknown (the source failed): keep what is there', { known: false }, 'keep'],
    ['diffed against a record of these inputs, nothing changed: keep it', { diff: 'state', changed: 0, removed: 0, recordDigest: 'd1' }, 'keep'],
    ['diffed against a record, one change: write', { diff: 'state', changed: 1, removed: 0, recordDigest: 'd1' }, 'write'],
    ['diffed against a record, one removal: write', { diff: 'state', changed: 0, removed: 1, recordDigest: 'd1' }, 'write'],
    ['diffed against a record of other inputs, nothing changed: write (the digest moves)', { diff: 'state', changed: 0, removed: 0, recordDigest: 'd0' }, 'write'],
    ['no inputs digest and a record without one: keep', { diff: 'state', changed: 0, removed: 0, recordDigest: undefined, digest: undefined }, 'keep'],
  ];
  for (const [what, change, expected] of cases) it(what, () => expect(decideRecord({ ...done, ...change })).toBe(expected));
});
