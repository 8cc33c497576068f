import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listReservations, ReservationStore } from '../../lib/store/reservations.ts';

const a = { containerId: 'ctr-a', ifname: 'eth0' };
const b = { containerId: 'ctr-b', ifname: 'eth0' };

describe('ReservationStore', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'hl-store-'));
    dirs.push(d);
    return join(d, 'net1');
  };

  it('writes the reference layout: a file per address holding "ID\\r\\nifname", and last_reserved_ip.N', () => {
    const dir = newDir();
    const store = ReservationStore.open(dir, true)!;
    expect(store.allocate(a, 0, ['10.1.2.2', '10.1.2.3'])).toBe('10.1.2.2');
    expect(readFileSync(join(dir, '10.1.2.2'), 'utf8')).toBe('ctr-a\r\neth0');
    expect(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.1.2.2');
    expect(statSync(join(dir, '10.1.2.2')).mode & 0o022).toBe(0);
    expect(store.allocate(b, 0, ['10.1.2.2', '10.1.2.3'])).toBe('10.1.2.3');
    expect(store.allocate(b, 1, ['10.1.2.2', '10.1.2.3'])).toBeUndefined();
    expect(store.addressesOf(a)).toEqual(['10.1.2.2']);
    expect(listReservations(dir).map((r) => [r.address, r.containerId, r.ifname]).sort()).toEqual([
      ['10.1.2.2', 'ctr-a', 'eth0'],
      ['10.1.2.3', 'ctr-b', 'eth0'],
    ]);
  });

  it('releases by owner from the index, idempotently, and leaves other owners alone', () => {
    const dir = newDir();
    const store = ReservationStore.open(dir, true)!;
    store.allocate(a, 0, ['10.1.2.2']);
    store.allocate(a, 1, ['fd00::2']);
    store.allocate(b, 0, ['10.1.2.3']);
    expect(store.release(a).sort()).toEqual(['10.1.2.2', 'fd00::2']);
    expect(store.release(a)).toEqual([]);
    expect(existsSync(join(dir, '10.1.2.2'))).toBe(false);
    expect(store.addressesOf(b)).toEqual(['10.1.2.3']);
    expect(existsSync(join(dir, '.tscni/owners/ctr-a:eth0'))).toBe(false);
  });

  it('refuses a requested address that is taken, even by the same owner, and keeps that reservation', () => {
    const store = ReservationStore.open(newDir(), true)!;
    expect(store.reserve(a, 0, '10.1.2.9')).toBe(true);
    expect(store.reserve(a, 0, '10.1.2.9')).toBe(false);
    expect(store.reserve(b, 0, '10.1.2.9')).toBe(false);
    expect(store.addressesOf(a)).toEqual(['10.1.2.9']);
    expect(store.addressesOf(b)).toEqual([]);
  });

  it('adopts a store written by the reference plugin: the index is rebuilt, DEL then finds its addresses', () => {
    const dir = newDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '10.1.2.2'), 'ctr-a\r\neth0');
    writeFileSync(join(dir, 'fd00::2'), 'ctr-a\r\neth0');
    writeFileSync(join(dir, '10.1.2.3'), 'ctr-b\r\neth1');
    writeFileSync(join(dir, 'last_reserved_ip.0'), '10.1.2.3');
    writeFileSync(join(dir, 'lock'), '');
    const store = ReservationStore.open(dir, false)!;
    expect(store.lastReserved(0)).toBe('10.1.2.3');
    expect(store.addressesOf(a).sort()).toEqual(['10.1.2.2', 'fd00::2']);
    expect(store.release({ containerId: 'ctr-b', ifname: 'eth1' })).toEqual(['10.1.2.3']);
    expect(readdirSync(dir).sort()).toEqual(['.tscni', '10.1.2.2', 'fd00::2', 'last_reserved_ip.0', 'lock']);
  });

  it('rebuilds a deleted index on the next open', () => {
    const dir = newDir();
    ReservationStore.open(dir, true)!.allocate(a, 0, ['10.1.2.2']);
    rmSync(join(dir, '.tscni'), { recursive: true });
    expect(ReservationStore.open(dir, false)!.release(a)).toEqual(['10.1.2.2']);
  });

  it('ignores leftovers of a killed ADD: an entry that never became the reservation frees nothing', () => {
    const dir = newDir();
    const store = ReservationStore.open(dir, true)!;
    store.allocate(b, 0, ['10.1.2.2']);
    // a's ADD was killed after writing its entry for 10.1.2.2 and before link(2) (b won the address)
    mkdirSync(join(dir, '.tscni/owners/ctr-a:eth0'));
    writeFileSync(join(dir, '.tscni/owners/ctr-a:eth0/10.1.2.2'), 'ctr-a\r\neth0');
    expect(store.addressesOf(a)).toEqual([]);
    expect(store.release(a)).toEqual([]);
    expect(store.addressesOf(b)).toEqual(['10.1.2.2']);
  });

  it('GC frees what is not valid, keeps what is, indexes what was missing and sweeps old leftovers', () => {
    const dir = newDir();
    const store = ReservationStore.open(dir, true)!;
    store.allocate(a, 0, ['10.1.2.2']);
    store.allocate(b, 0, ['10.1.2.3']);
    writeFileSync(join(dir, '10.1.2.4'), 'ctr-c\r\neth0'); // the reference wrote it after our index existed
    writeFileSync(join(dir, '10.1.2.5'), 'ctr-old'); // an ID-only file of an old reference
    unlinkSync(join(dir, '.tscni/owners/ctr-b:eth0/10.1.2.3')); // a damaged index
    writeFileSync(join(dir, '.tscni/tmp/w.999999999.1'), 'junk'); // a killed process's temp file
    const freed = store.gc((o) => ['ctr-b', 'ctr-c'].includes(o.containerId) && o.ifname === 'eth0');
    expect(freed.map((r) => r.address).sort()).toEqual(['10.1.2.2', '10.1.2.5']);
    expect(listReservations(dir).map((r) => r.address).sort()).toEqual(['10.1.2.3', '10.1.2.4']);
    expect(store.addressesOf(b)).toEqual(['10.1.2.3']);
    expect(store.addressesOf({ containerId: 'ctr-c', ifname: 'eth0' })).toEqual(['10.1.2.4']);
    expect(readdirSync(join(dir, '.tscni/tmp'))).toEqual([]);
  });

  it('a release never deletes a reservation that changed hands meanwhile', () => {
    const dir = newDir();
    const store = ReservationStore.open(dir, true)!;
    store.allocate(a, 0, ['10.1.2.2']);
    // a's reservation was freed and b took the address; a's entry is left over
    linkSync(join(dir, '10.1.2.2'), join(dir, '.tscni/tmp/keep'));
    unlinkSync(join(dir, '10.1.2.2'));
    expect(store.allocate(b, 0, ['10.1.2.2'])).toBe('10.1.2.2');
    const before = statSync(join(dir, '10.1.2.2'), { bigint: true });
    expect(store.release(a)).toEqual([]);
    expect(store.addressesOf(b)).toEqual(['10.1.2.2']);
    // b's file was not even moved aside (which would leave the name free for an instant)
    expect(statSync(join(dir, '10.1.2.2'), { bigint: true }).ctimeNs).toBe(before.ctimeNs);
  });

  it('refuses owners that could escape the store directory', () => {
    const store = ReservationStore.open(newDir(), true)!;
    expect(() => store.allocate({ containerId: '../x', ifname: 'eth0' }, 0, ['10.1.2.2'])).toThrow(/container ID/);
    expect(() => store.allocate({ containerId: 'x', ifname: '..' }, 0, ['10.1.2.2'])).toThrow(/interface name/);
    expect(() => store.allocate({ containerId: 'x', ifname: 'a/b' }, 0, ['10.1.2.2'])).toThrow(/interface name/);
  });

  it('does not create a missing store unless asked', () => {
    const dir = newDir();
    expect(ReservationStore.open(dir, false)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
  });
});
