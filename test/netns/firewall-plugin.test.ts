import { afterEach, describe, expect, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';
import { PLUGIN_VERSIONS } from '../support/versions.ts';

const ISOLATION = 'CNI firewall plugin rules (ingressPolicy: same-bridge)';

describe('firewall (iptables)', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** Addresses no other test uses: the lines that mention them are this test's alone. */
  function addresses() {
    const a = randomInt(1, 250);
    const b = randomInt(1, 250);
    return { v4: `10.${a}.${b}.2`, v6: `fd00:${a}:${b}::2` };
  }
  const save = () => sh(['iptables-save', '-t', 'filter']) + sh(['ip6tables-save', '-t', 'filter']);
  const mentioning = (needles: string[]) => save().split('\n').filter((l) => needles.some((n) => l.includes(n)));

  function prevResult(cniVersion: string, ips: { v4: string; v6: string }, bridge = 'cni0') {
    const legacy = cniVersion.startsWith('0.');
    const ip = (address: string, v: string) => ({ ...(legacy ? { version: v } : {}), address, interface: 2 });
    return { cniVersion, interfaces: [{ name: bridge }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }], ips: [ip(`${ips.v4}/24`, '4'), ip(`${ips.v6}/64`, '6')] };
  }

  for (const cniVersion of PLUGIN_VERSIONS) {
    it(`ADD accepts the container's traffic in CNI-FORWARD; DEL without prevResult removes exactly it (${cniVersion})`, () => {
      const ips = addresses();
      const before = mentioning([ips.v4, ips.v6]);
      const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };
      const conf = { cniVersion, name: 'fw-net', type: 'firewall', backend: 'iptables', prevResult: prevResult(cniVersion, ips) };
      s.defer(() => execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL' }, conf));
      const add = execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'ADD' }, conf);
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json.ips.map((i: any) => i.address)).toEqual([`${ips.v4}/24`, `${ips.v6}/64`]);
      const rules = mentioning([ips.v4, ips.v6]);
      expect(rules).toHaveLength(4);
      expect(rules[0]).toMatch(new RegExp(`^-A CNI-FORWARD -d ${ips.v4}/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "tscni-firewall [0-9a-f]{12} [0-9a-f]{24}" -j ACCEPT$`));
      expect(rules[3]).toMatch(new RegExp(`^-A CNI-FORWARD -s ${ips.v6}/128 -m comment`));
      for (const ipt of ['iptables', 'ip6tables']) {
        expect(sh([ipt, '-S', 'FORWARD'])).toContain('-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD');
        expect(sh([ipt, '-S', 'CNI-FORWARD'])).toContain('-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN');
      }
      // ADD again is idempotent.
      expect(execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'ADD' }, conf).status).toBe(0);
      expect(mentioning([ips.v4, ips.v6])).toHaveLength(4);
      if (cniVersion !== '0.3.1') {
        expect(execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'CHECK' }, conf).status).toBe(0);
        sh(['iptables-restore', '-w', '--noflush'], `*filter\n${rules[1]!.replace('-A ', '-D ')}\nCOMMIT\n`);
        const check = execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'CHECK' }, conf);
        expect(check.status).toBe(1);
        expect(check.json.msg).toMatch(/rule missing/);
      }
      const del = execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, { ...conf, prevResult: undefined });
      expect(del.status, del.stdout).toBe(0);
      expect(mentioning([ips.v4, ips.v6])).toEqual(before);
      expect(execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL' }, conf).status).toBe(0);
    });
  }

  it('accepts "backend": "" as podman writes it, meaning iptables (as the reference)', () => {
    const ips = addresses();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };
    const conf = { cniVersion: '0.4.0', name: 'fw-net', type: 'firewall', backend: '', prevResult: prevResult('0.4.0', ips) };
    s.defer(() => execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL' }, conf));
    const add = execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'ADD' }, conf);
    expect(add.status, add.stdout + add.stderr).toBe(0);
    expect(mentioning([ips.v4, ips.v6])).toHaveLength(4);
    expect(execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL' }, conf).status).toBe(0);
    expect(mentioning([ips.v4, ips.v6])).toHaveLength(0);
  });

  it('ingressPolicy same-bridge adds the reference isolation chains for the bridge', () => {
    const ips = addresses();
    const bridge = s.name('b');
    s.defer(() => {
      for (const ipt of ['iptables', 'ip6tables']) {
        tryRun([ipt, '-D', 'CNI-ISOLATION-STAGE-1', '-i', bridge, '!', '-o', bridge, '-m', 'comment', '--comment', ISOLATION, '-j', 'CNI-ISOLATION-STAGE-2']);
        tryRun([ipt, '-D', 'CNI-ISOLATION-STAGE-2', '-o', bridge, '-m', 'comment', '--comment', ISOLATION, '-j', 'DROP']);
      }
    });
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };
    const conf = { cniVersion: '1.0.0', name: 'fw-net', type: 'firewall', ingressPolicy: 'same-bridge', prevResult: prevResult('1.0.0', ips, bridge) };
    const add = execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'ADD' }, conf);
    expect(add.status, add.stdout).toBe(0);
    expect(mentioning([bridge])).toEqual([
      `-A CNI-ISOLATION-STAGE-1 -i ${bridge} ! -o ${bridge} -m comment --comment "${ISOLATION}" -j CNI-ISOLATION-STAGE-2`,
      `-A CNI-ISOLATION-STAGE-2 -o ${bridge} -m comment --comment "${ISOLATION}" -j DROP`,
      `-A CNI-ISOLATION-STAGE-1 -i ${bridge} ! -o ${bridge} -m comment --comment "${ISOLATION}" -j CNI-ISOLATION-STAGE-2`,
      `-A CNI-ISOLATION-STAGE-2 -o ${bridge} -m comment --comment "${ISOLATION}" -j DROP`,
    ]);
    const forward = sh(['iptables', '-S', 'FORWARD']).split('\n');
    expect(forward.findIndex((l) => l.includes('CNI-ISOLATION-STAGE-1'))).toBeLessThan(forward.findIndex((l) => l.includes('-j CNI-FORWARD')));
    expect(execPlugin(join(OUR_BIN, 'firewall'), { ...env, CNI_COMMAND: 'DEL' }, conf).status).toBe(0);
    expect(mentioning([ips.v4, ips.v6])).toEqual([]);
    // As the reference, the bridge's isolation rules outlive DEL; GC drops them once the bridge is gone.
    expect(mentioning([bridge])).toHaveLength(4);
    const gc = execPlugin(join(OUR_BIN, 'firewall'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: 'fw-net', type: 'firewall', 'cni.dev/valid-attachments': [] });
    expect(gc.status, gc.stdout).toBe(0);
    expect(mentioning([bridge])).toEqual([]);
  });

  it('refuses firewalld, unknown policies and a missing prevResult with code 7, touching nothing', () => {
    const ips = addresses();
    const env = { CNI_CONTAINERID: s.name('c'), CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_COMMAND: 'ADD' };
    const base = { cniVersion: '1.0.0', name: 'fw-net', type: 'firewall', prevResult: prevResult('1.0.0', ips) };
    for (const bad of [{ backend: 'firewalld' }, { ingressPolicy: 'closed' }, { prevResult: undefined }, { iptablesAdminChainName: 'A B' }]) {
      const r = execPlugin(join(OUR_BIN, 'firewall'), env, { ...base, ...bad });
      expect([r.status, r.json.code], JSON.stringify(bad)).toEqual([1, 7]);
    }
    expect(mentioning([ips.v4, ips.v6])).toEqual([]);
  });

  it('GC removes the rules of attachments not in the valid list', () => {
    const [a, b] = [addresses(), addresses()];
    const net = `fw-${s.prefix}`;
    const add = (id: string, ips: typeof a) =>
      execPlugin(join(OUR_BIN, 'firewall'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' }, { cniVersion: '1.1.0', name: net, type: 'firewall', prevResult: prevResult('1.1.0', ips) });
    expect(add(`${s.prefix}keep`, a).status).toBe(0);
    expect(add(`${s.prefix}gone`, b).status).toBe(0);
    s.defer(() => execPlugin(join(OUR_BIN, 'firewall'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: net, type: 'firewall', 'cni.dev/valid-attachments': [] }));
    const gc = execPlugin(join(OUR_BIN, 'firewall'), { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { cniVersion: '1.1.0', name: net, type: 'firewall', 'cni.dev/valid-attachments': [{ containerID: `${s.prefix}keep`, ifname: 'eth0' }] });
    expect(gc.status, gc.stdout).toBe(0);
    expect(mentioning([b.v4, b.v6])).toEqual([]);
    expect(mentioning([a.v4, a.v6])).toHaveLength(4);
  });
});
