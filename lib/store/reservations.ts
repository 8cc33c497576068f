import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmdirSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { validIfName } from '../cni/env.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { formatIp, parseIp } from '../net/ip.ts';

/**
 * A host-local address store, readable by the reference plugin and safe without a lock.
 *
 *   DIR/10.1.2.3               one file per reserved address: "containerID\r\nifname" (reference 1.1.1)
 *   DIR/last_reserved_ip.N      the last address handed out from range set N (a round-robin hint)
 *   DIR/.tscni/owners/ID:IF/A   a hard link to DIR/A: the index that lets DEL skip the scan
 *   DIR/.tscni/owners/.complete present once the index covers every reservation
 *   DIR/.tscni/tmp/             temporary names for atomic replace and safe release
 *
 * An address is reserved by link(2) of the owner's index entry to DIR/A: atomic and refused when
 * the name exists, so no address is given twice and a kill leaves either no reservation or a whole
 * one. An index entry counts only while it is the same inode as DIR/A; anything else is a leftover
 * of a killed process and is ignored (and swept by GC). Releasing renames DIR/A aside and checks the
 * inode before deleting, so a release never removes a reservation it did not mean to.
 *
 *   DIR/.tscni/claims/ID:IF     held (O_EXCL, holding its pid) by the one ADD of that owner in progress
 *
 * Two ADDs of one owner (a runtime's retry racing the first) would each find no address of theirs
 * and each reserve one: the claim makes the second wait, then find the first's address. A dead
 * holder's claim is taken over; no other ADD ever waits for it.
 */
export interface Owner {
  containerId: string;
  ifname: string;
}

export interface Reservation extends Owner {
  address: string;
  /** When it was reserved (the file's mtime). */
  mtime: Date;
}

/** host-local's default data dir: one store directory per network under it. */
export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

const LINE_BREAK = '\r\n';
const LAST_RESERVED = 'last_reserved_ip.';
const META = '.tscni';
const OWNERS = `${META}/owners`;
const TMP = `${META}/tmp`;
const COMPLETE = `${OWNERS}/.complete`;
const CLAIMS = `${META}/claims`;
/** How long an ADD waits for another ADD of the same owner before giving up (code 11). */
const CLAIM_WAIT_MS = 10_000;
/** A leftover index entry younger than this may belong to an ADD in progress: GC leaves it. */
const STALE_ENTRY_MS = 60_000;

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** libcni's rule for container IDs and network names: both name directories and files of a store. */
export const isStoreName = (name: string): boolean => name.length <= 255 && NAME.test(name);

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const sameFile = (a: Stats, b: Stats) => a.ino === b.ino && a.dev === b.dev;

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

function readdirOrEmpty(path: string): string[] {
  try {
    return readdirSync(path);
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return [];
    throw err;
  }
}

function ownerKey(owner: Owner): string {
  const { containerId: id, ifname } = owner;
  if (!isStoreName(id)) throw new Error(`invalid container ID for the address store: ${JSON.stringify(id.slice(0, 64))}`);
  if (validIfName(ifname) !== undefined) {
    throw new Error(`invalid interface name for the address store: ${JSON.stringify(ifname.slice(0, 64))}`);
  }
  return `${id}:${ifname}`;
}

/** Reads `containerID\r\nifname` (older references wrote only the ID). */
export function parseOwner(content: string): Owner {
  const [containerId = '', ifname = ''] = content.trim().split(LINE_BREAK);
  return { containerId: containerId.trim(), ifname: ifname.trim() };
}

/** Whether a name in the store is a reservation: an address in the canonical form Go writes. */
function isAddressName(name: string): boolean {
  const ip = parseIp(name);
  return ip !== undefined && formatIp(ip) === name;
}

/** A reservation file read through one descriptor, so its owner and inode belong together. */
function readReservation(path: string): { owner: Owner; stats: Stats } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(stats.size, 4096));
    const n = readSync(fd, buf, 0, buf.length, 0);
    return { owner: parseOwner(buf.subarray(0, n).toString('utf8')), stats };
  } finally {
    closeSync(fd);
  }
}

let tmpCounter = 0;

export class ReservationStore {
  private constructor(readonly dir: string) {}

  /**
   * Opens the store at `dir`, creating it when `create` (ADD) and rebuilding the index when it is
   * missing (a store the reference plugin made, or a damaged one). Undefined when absent and not created.
   */
  static open(dir: string, create: boolean): ReservationStore | undefined {
    const store = new ReservationStore(dir);
    if (statOrUndefined(`${dir}/${COMPLETE}`)) return store;
    if (!create && !statOrUndefined(dir)) return undefined;
    mkdirSync(`${dir}/${OWNERS}`, { recursive: true, mode: 0o755 });
    mkdirSync(`${dir}/${TMP}`, { recursive: true, mode: 0o700 });
    store.repairIndex(() => true, new Date(0));
    writeFileSync(`${dir}/${COMPLETE}`, '', { mode: 0o644 });
    return store;
  }

  private ownerDir(owner: Owner): string {
    return `${this.dir}/${OWNERS}/${ownerKey(owner)}`;
  }

  private tmpName(tag: string): string {
    return `${this.dir}/${TMP}/${tag}.${process.pid}.${tmpCounter++}`;
  }

  /**
   * Writes through a temporary name and renames it into place, so no reader ever sees a torn file.
   * The old file is unlinked first: ext4 flushes a file renamed over an existing one (~2 ms), and a
   * round-robin hint briefly absent only means one search starts at the range start.
   */
  private replaceFile(path: string, content: string): void {
    const tmp = this.tmpName('w');
    try {
      writeFileSync(tmp, content, { mode: 0o644 });
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
      mkdirSync(`${this.dir}/${TMP}`, { recursive: true, mode: 0o700 });
      writeFileSync(tmp, content, { mode: 0o644 });
    }
    unlinkQuietly(path);
    renameSync(tmp, path);
  }

  /**
   * Makes this the only ADD of `owner` in progress until the returned release is called: waits for
   * a live holder (code 11 past `waitMs`), takes over a dead one's claim.
   */
  async claim(owner: Owner, waitMs = CLAIM_WAIT_MS): Promise<() => void> {
    const path = `${this.dir}/${CLAIMS}/${ownerKey(owner)}`;
    const me = `${process.pid}\n`;
    const deadline = performance.now() + waitMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      try {
        writeFileSync(path, me, { flag: 'wx', mode: 0o600 });
        return () => {
          if (readOrUndefined(path) === me) unlinkQuietly(path);
        };
      } catch (err) {
        if (code(err) === 'ENOENT') {
          ensureDir(`${this.dir}/${CLAIMS}`);
          continue;
        }
        if (code(err) !== 'EEXIST') throw err;
      }
      const seen = readOrUndefined(path);
      const holder = seen === undefined ? NaN : Number(seen.trim());
      if (seen !== undefined && Number.isInteger(holder) && holder > 0 && !processAlive(holder)) {
        this.takeOverClaim(path, seen);
        continue;
      }
      if (performance.now() >= deadline) {
        throw new CniError(ErrorCode.tryAgainLater, `another ADD of ${owner.containerId}/${owner.ifname} is in progress`, `${path} is held by pid ${seen?.trim() || '?'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /** Moves a dead holder's claim aside; puts it back if it was not that claim any more. */
  private takeOverClaim(path: string, seen: string): void {
    const aside = this.tmpName('claim');
    try {
      renameSync(path, aside);
    } catch (err) {
      if (code(err) === 'ENOENT') return;
      throw err;
    }
    try {
      if (readOrUndefined(aside) !== seen) linkSync(aside, path);
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
    } finally {
      unlinkQuietly(aside);
    }
  }

  /**
   * The addresses reserved for (container ID, ifname), from the index: no scan. An entry counts only
   * while it is the same file as the reservation.
   */
  addressesOf(owner: Owner): string[] {
    const odir = this.ownerDir(owner);
    return readdirOrEmpty(odir).filter((address) => {
      const entry = statOrUndefined(`${odir}/${address}`);
      const file = entry && statOrUndefined(`${this.dir}/${address}`);
      return !!file && sameFile(entry!, file);
    });
  }

  lastReserved(setIndex: number): string | undefined {
    try {
      return readFileSync(`${this.dir}/${LAST_RESERVED}${setIndex}`, 'utf8');
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Writes the owner's index entry at `entry`, making the owner's directory if a DEL or GC removed it. */
  private writeEntry(owner: Owner, entry: string): void {
    const content = `${owner.containerId}${LINE_BREAK}${owner.ifname}`;
    ensureDir(this.ownerDir(owner));
    for (let attempt = 0; ; attempt++) {
      try {
        writeFileSync(entry, content, { mode: 0o644 });
        return;
      } catch (err) {
        if (code(err) !== 'ENOENT' || attempt >= 3) throw err;
        mkdirSync(this.ownerDir(owner), { recursive: true, mode: 0o755 });
      }
    }
  }

  /**
   * Reserves the first free address of `candidates` for the owner and records it as set
   * `setIndex`'s last reservation. Undefined when every candidate is taken.
   */
  allocate(owner: Owner, setIndex: number, candidates: Iterable<string>): string | undefined {
    const odir = this.ownerDir(owner);
    let entry: string | undefined;
    for (const address of candidates) {
      if (statOrUndefined(`${this.dir}/${address}`)) continue; // taken: one lstat, no entry to move
      const next = `${odir}/${address}`;
      if (entry === undefined) this.writeEntry(owner, next);
      else this.moveEntry(owner, entry, next);
      entry = next;
      if (this.linkEntry(owner, entry, address)) {
        this.replaceFile(`${this.dir}/${LAST_RESERVED}${setIndex}`, address);
        return address;
      }
    }
    if (entry !== undefined) unlinkQuietly(entry);
    return undefined;
  }

  /** Reserves exactly `address`; false when it is taken. */
  reserve(owner: Owner, setIndex: number, address: string): boolean {
    return this.allocate(owner, setIndex, [address]) !== undefined;
  }

  /** Whether any of `candidates` is free (STATUS): stops at the first free one. */
  hasFree(candidates: Iterable<string>): boolean {
    for (const address of candidates) if (!statOrUndefined(`${this.dir}/${address}`)) return true;
    return false;
  }

  private moveEntry(owner: Owner, from: string, to: string): void {
    try {
      renameSync(from, to);
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
      this.writeEntry(owner, to); // a GC swept it meanwhile
    }
  }

  /** link(entry, DIR/address): true when reserved, false when the address is taken. */
  private linkEntry(owner: Owner, entry: string, address: string): boolean {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(entry, `${this.dir}/${address}`);
        return true;
      } catch (err) {
        if (code(err) === 'EEXIST') return false;
        if (code(err) !== 'ENOENT' || attempt >= 3) throw err;
        this.writeEntry(owner, entry); // a GC swept the entry meanwhile
      }
    }
  }

  /** Frees every address of the owner (index only, no scan). Returns the addresses freed. */
  release(owner: Owner): string[] {
    const odir = this.ownerDir(owner);
    const freed: string[] = [];
    for (const address of readdirOrEmpty(odir)) {
      if (this.releaseEntry(`${odir}/${address}`, address)) freed.push(address);
    }
    rmdirQuietly(odir); // stays while an ADD of the same owner is filling it
    return freed;
  }

  /** Frees one address of the owner, if it is still theirs (rollback of a failed ADD). */
  releaseAddress(owner: Owner, address: string): boolean {
    return this.releaseEntry(`${this.ownerDir(owner)}/${address}`, address);
  }

  private releaseEntry(entry: string, address: string): boolean {
    const stats = statOrUndefined(entry);
    if (!stats) return false;
    const freed = this.unlinkIfSame(address, stats);
    unlinkQuietly(entry);
    return freed;
  }

  /**
   * Deletes DIR/address only if it is still the file `expected`. It is compared first, so another
   * owner's reservation is never moved; then renamed aside and compared again, so one made in the
   * instant between is put back instead of lost.
   */
  private unlinkIfSame(address: string, expected: Stats): boolean {
    const path = `${this.dir}/${address}`;
    const current = statOrUndefined(path);
    if (!current || !sameFile(current, expected)) return false;
    const aside = this.tmpName('rel');
    try {
      renameSync(path, aside);
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw err;
    }
    if (sameFile(lstatSync(aside), expected)) {
      unlinkSync(aside);
      return true;
    }
    try {
      linkSync(aside, path);
    } catch (err) {
      // Taken again in that instant too: the newest holder keeps the name; the other's index
      // entry no longer matches and GC sweeps it. Nothing better exists without a lock.
      if (code(err) !== 'EEXIST') throw err;
    } finally {
      unlinkSync(aside);
    }
    return false;
  }

  /**
   * Frees every reservation whose owner is not `valid`, rebuilds missing index entries, and sweeps
   * what killed processes left (stale index entries, temporary files). Returns what was freed.
   */
  gc(valid: (owner: Owner) => boolean): Reservation[] {
    const freed = this.repairIndex(valid, new Date(Date.now() - STALE_ENTRY_MS));
    this.sweepTmp();
    this.sweepClaims();
    writeFileSync(`${this.dir}/${COMPLETE}`, '', { mode: 0o644 });
    return freed;
  }

  /**
   * One pass over the store: reservations of owners not `keep` are freed, the others get an index
   * entry; index entries that match no reservation and are older than `staleBefore` are removed.
   */
  private repairIndex(keep: (owner: Owner) => boolean, staleBefore: Date): Reservation[] {
    const freed: Reservation[] = [];
    for (const address of readdirOrEmpty(this.dir)) {
      if (!isAddressName(address)) continue;
      const found = readReservation(`${this.dir}/${address}`);
      if (!found) continue;
      const { owner, stats } = found;
      const key = indexKey(owner);
      if (!keep(owner)) {
        if (this.unlinkIfSame(address, stats)) freed.push({ address, ...owner, mtime: stats.mtime });
        if (key !== undefined) unlinkIfSameFile(`${this.dir}/${OWNERS}/${key}/${address}`, stats);
      } else if (key !== undefined) {
        this.linkIndex(key, address, stats);
      }
    }
    for (const key of readdirOrEmpty(`${this.dir}/${OWNERS}`)) {
      if (key.startsWith('.')) continue;
      const odir = `${this.dir}/${OWNERS}/${key}`;
      for (const address of readdirOrEmpty(odir)) {
        const entry = statOrUndefined(`${odir}/${address}`);
        const file = statOrUndefined(`${this.dir}/${address}`);
        if (entry && !(file && sameFile(entry, file)) && entry.mtime < staleBefore) unlinkQuietly(`${odir}/${address}`);
      }
      rmdirQuietly(odir);
    }
    return freed;
  }

  /** Makes owners/KEY/address the same file as DIR/address (`stats`), replacing a leftover. */
  private linkIndex(key: string, address: string, stats: Stats): void {
    const odir = `${this.dir}/${OWNERS}/${key}`;
    const entry = `${odir}/${address}`;
    ensureDir(odir);
    try {
      linkSync(`${this.dir}/${address}`, entry);
    } catch (err) {
      if (code(err) === 'ENOENT') return; // released meanwhile
      if (code(err) !== 'EEXIST') throw err;
      const current = statOrUndefined(entry);
      if (current && sameFile(current, stats)) return; // already indexed
      const tmp = this.tmpName('idx');
      try {
        linkSync(`${this.dir}/${address}`, tmp);
      } catch (e) {
        if (code(e) === 'ENOENT') return;
        throw e;
      }
      renameSync(tmp, entry); // a leftover entry: replace it
    }
    if (!sameFile(lstatSync(entry), stats)) unlinkQuietly(entry); // DIR/address changed hands meanwhile
  }

  /** Claims of ADDs that were killed: the next ADD of that owner would take them over anyway. */
  private sweepClaims(): void {
    const dir = `${this.dir}/${CLAIMS}`;
    for (const name of readdirOrEmpty(dir)) {
      const pid = Number(readOrUndefined(`${dir}/${name}`)?.trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) unlinkQuietly(`${dir}/${name}`);
    }
  }

  private sweepTmp(): void {
    const dir = `${this.dir}/${TMP}`;
    for (const name of readdirOrEmpty(dir)) {
      const pid = Number(name.split('.').at(-2));
      if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) unlinkQuietly(`${dir}/${name}`);
    }
  }
}

/** The index key of an owner read from a file; undefined for one we cannot index (an ID-only file). */
function indexKey(owner: Owner): string | undefined {
  try {
    return ownerKey(owner);
  } catch {
    return undefined;
  }
}

/** mkdir that accepts an existing directory; the parent must exist. */
function ensureDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o755 });
  } catch (err) {
    if (code(err) === 'EEXIST') return;
    if (code(err) !== 'ENOENT') throw err;
    mkdirSync(path, { recursive: true, mode: 0o755 });
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Removes an empty directory; one that still holds entries, or is gone, is left as it is. */
function rmdirQuietly(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not empty, or already gone
  }
}

function unlinkIfSameFile(path: string, stats: Stats): void {
  const current = statOrUndefined(path);
  if (current && sameFile(current, stats)) unlinkQuietly(path);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

/**
 * Every reservation in a store directory (the reference's or ours), for the operator CLI:
 * `tscni ipam ls/leaks`. An absent directory has none.
 */
export function listReservations(storeDir: string): Reservation[] {
  const out: Reservation[] = [];
  for (const address of readdirOrEmpty(storeDir)) {
    if (!isAddressName(address)) continue;
    const found = readReservation(`${storeDir}/${address}`);
    if (found) out.push({ address, ...found.owner, mtime: found.stats.mtime });
  }
  return out;
}

/** Whether the store can be written: a file can be made and removed in it. */
export function probeWritable(storeDir: string): string | undefined {
  try {
    mkdirSync(`${storeDir}/${TMP}`, { recursive: true, mode: 0o700 });
    const probe = `${storeDir}/${TMP}/probe.${process.pid}.${tmpCounter++}`;
    writeFileSync(probe, '');
    unlinkSync(probe);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
