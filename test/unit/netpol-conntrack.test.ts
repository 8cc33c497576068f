import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { conntrackMentions } from '../../plugins/netpol/kernel.ts';

/** conntrackMentions reads /proc/net/nf_conntrack's format; here a file with lines as the kernel prints them. */
const dir = mkdtempSync(join(tmpdir(), 'netpol-ct-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const v4 = (src: string, dst: string) => `ipv4     2 tcp      6 117 SYN_SENT src=${src} dst=${dst} sport=40000 dport=8080 [UNREPLIED] src=${dst} dst=${src} sport=8080 dport=40000 mark=0 zone=0 use=2\n`;
const v6 = (src: string, dst: string) => `ipv6     10 udp      17 29 src=${src} dst=${dst} sport=5353 dport=53 [UNREPLIED] src=${dst} dst=${src} sport=53 dport=5353 mark=0 zone=0 use=2\n`;

function table(text: string): string {
  const file = join(dir, `t${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, text);
  return file;
}

describe('conntrackMentions', () => {
  it('names the addresses with an entry in either direction, not their prefixes or suffixes', () => {
    const file = table(v4('10.1.0.2', '10.1.0.5') + v4('110.1.0.7', '10.1.0.77'));
    expect(conntrackMentions(['10.1.0.5', '10.1.0.2', '10.1.0.7', '10.1.0.6'], file)).toEqual(new Set(['10.1.0.5', '10.1.0.2']));
  });

  it('matches IPv6 in the kernel\'s full form (every group of four digits)', () => {
    const file = table(v6('fd00:0000:0000:0000:0000:0000:0000:0002', 'fd00:0000:0000:0000:0000:0000:0001:0005'));
    expect(conntrackMentions(['fd00::2', 'fd00::1:5', 'fd00::5'], file)).toEqual(new Set(['fd00::2', 'fd00::1:5']));
  });

  it('finds an address in a table larger than one read, split across reads anywhere', () => {
    const filler = v4('192.168.9.9', '192.168.9.8').repeat(2000); // ~330 KB
    for (const pad of [0, 7, 13]) {
      const file = table('x'.repeat(pad) + filler + v4('10.9.0.1', '10.9.0.2'));
      expect(conntrackMentions(['10.9.0.2'], file)).toEqual(new Set(['10.9.0.2']));
    }
  });

  it('an empty table names nothing; an unreadable one is undefined (the caller flushes everything)', () => {
    expect(conntrackMentions(['10.1.0.5'], table(''))).toEqual(new Set());
    expect(conntrackMentions(['10.1.0.5'], join(dir, 'missing'))).toBeUndefined();
  });
});
