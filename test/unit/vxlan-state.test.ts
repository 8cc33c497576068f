import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '../../plugins/vxlan/peers.ts';
import { forgetApplied, formatApplied, parseApplied, readApplied, readState, removeState, writeApplied, writeState } from '../../plugins/vxlan/state.ts';

const peer = (n: number): Peer => ({ subnet: `10.244.${n}.0/24`, ip: `192.168.100.${n}`, mac: `0a:01:c0:a8:64:0${n}`, vtep: `10.244.${n}.0` });

describe('the applied record', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'vxlan-state-'));
    dirs.push(d);
    return join(d, 'state');
  };

  it('round-trips peers, ifindex and digest; an ADD reads the header only', () => {
    const record = { ifindex: 7, digest: 'abc', peers: [peer(2), peer(3)] };
    expect(parseApplied(formatApplied(record), { peers: true })).toEqual(record);
    expect(parseApplied(formatApplied(record), { peers: false })).toEqual({ ifindex: 7, digest: 'abc', peers: [] });
    expect(parseApplied(formatApplied({ ifindex: 7, digest: undefined, peers: [] }), { peers: true })).toEqual({ ifindex: 7, digest: undefined, peers: [] });
  });

  it('treats any damage as no record (the caller then reads the kernel)', () => {
    const good = formatApplied({ ifindex: 7, digest: 'abc', peers: [peer(2), peer(3)] });
    const [header, peers] = good.split('\n') as [string, string];
    const damaged = [
      '',
      'garbage',
      good.slice(0, good.length - 10), // cut short
      `${header}\n${peers.replace('192.168.100.3', '192.168.100.4')}\n`, // a peer changed
      `${header}\n${JSON.stringify([peer(2)])}\n`, // a peer dropped
      `${header.replace('"ifindex":7', '"ifindex":"7"')}\n${peers}\n`,
      `{"ifindex":7}\n${peers}\n`, // no checksum
    ];
    for (const bad of damaged) {
      expect(parseApplied(bad, { peers: true }), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('is written atomically, root-only, next to the state file, and removed with it', () => {
    const d = dir();
    writeState(d, 'tscni.1', { subnet: '10.244.1.0/24', ip: '192.168.100.1', mac: '0a:01:c0:a8:64:01' });
    writeApplied(d, 'tscni.1', { ifindex: 7, digest: undefined, peers: [peer(2)] });
    expect(statSync(join(d, 'tscni.1.applied')).mode & 0o777).toBe(0o600);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(readApplied(d, 'tscni.1', { peers: true })?.peers).toEqual([peer(2)]);
    forgetApplied(d, 'tscni.1');
    expect(readApplied(d, 'tscni.1', { peers: true })).toBeUndefined();
    expect(readState(d, 'tscni.1')?.subnet).toBe('10.244.1.0/24');
    writeApplied(d, 'tscni.1', { ifindex: 7, digest: undefined, peers: [] });
    writeFileSync(join(d, 'tscni.1.applied'), readFileSync(join(d, 'tscni.1.applied'), 'utf8').slice(0, 5));
    expect(readApplied(d, 'tscni.1', { peers: false })).toBeUndefined();
    removeState(d, 'tscni.1');
    expect(readState(d, 'tscni.1')).toBeUndefined();
    expect(() => statSync(join(d, 'tscni.1.applied'))).toThrow();
  });
});
