import { describe, expect, it } from 'vitest';
import { parseIptablesSave } from '../../lib/netfilter/iptables.ts';
import { attachmentHashOf, firewallTag, planFirewallAdd, planFirewallDel } from '../../plugins/firewall/plan.ts';

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
    const mine = attachmentHashOf('net', 'c1');
    expect(planFirewallDel(t, 'net', (h) => h === mine)).toEqual([`-D CNI-FORWARD -s 10.88.0.2/32 -m comment --comment "${tag}" -j ACCEPT`]);
    expect(planFirewallDel(t, 'net', (h) => h !== mine)).toEqual([`-D CNI-FORWARD -s 10.88.0.3/32 -m comment --comment "${other}" -j ACCEPT`]);
  });
});
