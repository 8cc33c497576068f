import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkBridge } from '../../cli/doctor.ts';
import { findLeaks } from '../../cli/ipam-command.ts';
import { shellCommand, shellQuote } from '../../cli/shell-quote.ts';
import { splitRuleLine } from '../../cli/tagged-rules.ts';
import { parseCidr } from '../../lib/net/ip.ts';

/** What bash makes of a printed command line: each word it would pass, without running anything else. */
function wordsOf(line: string): string[] {
  const r = spawnSync('bash', ['-c', `words() { printf '%s\\0' "$@"; }; words ${line}`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\0').slice(0, -1);
}

const HOSTILE = ['$(reboot)', '`reboot`', 'a b', "it's", '"x"', 'a;rm -rf /', 'x\ny', '*', '~', '!x', '', '-', '=x', '\\', '$HOME', 'é'];

describe('shellQuote: a printed fix command runs exactly its argv when pasted', () => {
  it('leaves plain words alone', () => {
    expect(shellCommand(['ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'br-0.x'])).toBe('ip addr add 10.9.0.1/24 dev br-0.x');
  });

  it('bash reads every hostile word back as that one word', () => {
    for (const w of HOSTILE) expect(wordsOf(shellQuote(w)), JSON.stringify(w)).toEqual([w]);
    expect(wordsOf(shellCommand(HOSTILE))).toEqual(HOSTILE);
  });

  it('leaks and doctor quote an ifname like $(reboot), a network and a bridge name', () => {
    const leaks = findLeaks([{ network: 'n', address: '10.0.0.2', containerID: 'c1', ifname: '$(reboot)', since: '', file: '' }], []);
    expect(leaks[0]!.fix).toBe("CNI_CONTAINERID=c1 CNI_IFNAME='$(reboot)' tscni del n");
    const fix = checkBridge({ network: 'n', bridge: '`reboot`', isGateway: true, subnets: [{ subnet: parseCidr('10.9.0.0/24')!, gateway: parseCidr('10.9.0.1/24')!.ip }] }, { up: false, addrs: [] }, 1)
      .map((f) => f.fix)
      .filter(Boolean);
    expect(fix).toEqual(["ip link set '`reboot`' up", "ip addr add 10.9.0.1/24 dev '`reboot`'"]);
  });

  it('an iptables-save line splits into the words iptables-restore sees', () => {
    expect(splitRuleLine('-D POSTROUTING -s 10.0.0.2/32 -m comment --comment "name: \\"n\\" id: \\"$(x)\\"" -j CNI-abc')).toEqual([
      '-D', 'POSTROUTING', '-s', '10.0.0.2/32', '-m', 'comment', '--comment', 'name: "n" id: "$(x)"', '-j', 'CNI-abc',
    ]);
    expect(splitRuleLine('-A X --comment "" -j Y')).toEqual(['-A', 'X', '--comment', '', '-j', 'Y']);
  });
});
