import { describe, expect, it } from 'vitest';
import { attachmentHash } from '../../lib/digest.ts';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import { firewallTag, planFirewallAdd, planFirewallDel, planIsolationGc } from '../../plugins/firewall/plan.ts';

describe('firewall plan', () => {
  const tag = firewallTag('net', 'c1');
  const plan = { adminChain: 'CNI-ADMIN', ips: ['10.88.0.2'], family: 4 as const, tag };

  it('creates chains and jumps only when missing, then appends the attachment rules', () => {
    const empty = parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n');
    expect(planFirewallAdd(empty, plan)).toEqual([
      '-N CNI-FORWARD',
      '-N CNI-ADMIN',
      '-I FORWARD 1 -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
      '-I CNI-FORWARD 1 -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN',
      `-A CNI-FORWARD -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "${tag}" -j ACCEPT`,
      `-A CNI-FORWARD -s 10.88.0.2/32 -m comment --comment "${tag}" -j ACCEPT`,
    ]);
    const ready = parseIptablesSave(
      [':FORWARD ACCEPT [0:0]', ':CNI-FORWARD - [0:0]', ':CNI-ADMIN - [0:0]', '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD', '-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN', `-A CNI-FORWARD -s 10.88.0.2/32 -m comment --comment "${tag}" -j ACCEPT`].join('\n'),
    );
    expect(planFirewallAdd(ready, plan)).toEqual([`-A CNI-FORWARD -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "${tag}" -j ACCEPT`]);
  });

  it('deletes rules by their tag, for one attachment or all but the valid ones', () => {
    const other = firewallTag('net', 'c2');
    const foreign = firewallTag('other-net', 'c1');
    const t = parseIptablesSave([`-A CNI-FORWARD -s 10.88.0.2/32 -m comment --comment "${tag}" -j ACCEPT`, `-A CNI-FORWARD -s 10.88.0.3/32 -m comment --comment "${other}" -j ACCEPT`, `-A CNI-FORWARD -s 10.1.0.3/32 -m comment --comment "${foreign}" -j ACCEPT`].join('\n'));
    const mine = attachmentHash('net', 'c1');
    expect(planFirewallDel(t, 'net', (h) => h === mine)).toEqual([`-D CNI-FORWARD -s 10.88.0.2/32 -m comment --comment "${tag}" -j ACCEPT`]);
    expect(planFirewallDel(t, 'net', (h) => h !== mine)).toEqual([`-D CNI-FORWARD -s 10.88.0.3/32 -m comment --comment "${other}" -j ACCEPT`]);
  });

  const asSaved = (lines: string[]) => parseIptablesSave(lines.map((l) => l.replace(/^-N (\S+)$/, ':$1 - [0:0]').replace(/^-I (\S+) 1 /, '-A $1 ')).join('\n'));

  it('removes CNI-FORWARD and an empty admin chain with the last attachment, rule by rule', () => {
    const t = asSaved([':FORWARD ACCEPT [0:0]', ...planFirewallAdd(parseIptablesSave(''), plan)]);
    const mine = attachmentHash('net', 'c1');
    expect(planFirewallDel(t, 'net', (h) => h === mine).filter((l) => l.startsWith('-X'))).toEqual(['-X CNI-FORWARD', '-X CNI-ADMIN']);
    const other = asSaved([':FORWARD ACCEPT [0:0]', ...planFirewallAdd(parseIptablesSave(''), plan), ...planFirewallAdd(parseIptablesSave(':CNI-FORWARD - [0:0]\n:CNI-ADMIN - [0:0]'), { ...plan, ips: ['10.88.0.3'], tag: firewallTag('net', 'c2') }).filter((l) => l.includes('10.88.0.3'))]);
    expect(planFirewallDel(other, 'net', (h) => h === mine).filter((l) => l.startsWith('-X'))).toEqual([]);
  });

  it('GC drops isolation rules of bridges that are gone, and the chains with the last one', () => {
    const t = asSaved([':FORWARD ACCEPT [0:0]', ...planFirewallAdd(parseIptablesSave(''), { ...plan, isolateBridge: 'br-a' })]);
    expect(planIsolationGc(t, () => true)).toEqual([]);
    const gc = planIsolationGc(t, (b) => b !== 'br-a');
    expect(gc.filter((l) => l.startsWith('-X'))).toEqual(['-X CNI-ISOLATION-STAGE-1', '-X CNI-ISOLATION-STAGE-2']);
    expect(gc.filter((l) => l.startsWith('-D'))).toHaveLength(5);
  });
});
