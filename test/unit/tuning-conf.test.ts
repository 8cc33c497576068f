import { describe, expect, it } from 'vitest';
import { parseConf } from '../../lib/cni/conf.ts';
import { parseAllowlist, resolveTuning, restorableSysctl, sysctlPath, TuningConf } from '../../plugins/tuning/conf.ts';
import { diffLink, originalAttrs, planLinkSet } from '../../plugins/tuning/plan.ts';

describe('tuning conf', () => {
  it('turns sysctl keys into /proc/sys paths with IFNAME substituted', () => {
    expect(sysctlPath('net.ipv4.conf.IFNAME.rp_filter', 'eth0', undefined)).toBe('net/ipv4/conf/eth0/rp_filter');
    expect(sysctlPath('net/ipv4/conf/eth0.100/rp_filter', 'x', undefined)).toBe('net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlPath('net.ipv4.conf.IFNAME.rp_filter', 'eth0.5', undefined)).toBe('net/ipv4/conf/eth0.5/rp_filter');
    for (const bad of ['kernel.pid_max', 'net', 'net..ipv4', 'net/ipv4/../../kernel/x', 'net.ipv4 x']) {
      expect(() => sysctlPath(bad, 'eth0', undefined), bad).toThrow(/invalid net sysctl key/);
    }
  });

  it('restores from a state file only what ADD could have saved: net/… paths with plain values', () => {
    expect(restorableSysctl('net/ipv4/conf/eth0.100/rp_filter', '1')).toBe(true);
    expect(restorableSysctl(sysctlPath('net.core.somaxconn', 'eth0', undefined), '4096')).toBe(true);
    for (const bad of ['kernel/domainname', 'kernel.domainname', 'net.core.somaxconn', 'net', 'net/', 'net//x', 'net/../kernel/domainname', 'net/ipv4/../../kernel/x', 'net/./x', 'netx/y', '/net/core/x', 'net/core/x y']) {
      expect(restorableSysctl(bad, '1'), bad).toBe(false);
    }
    for (const bad of [1, null, 'a\nb', 'a\u0000']) expect(restorableSysctl('net/core/somaxconn', bad), JSON.stringify(bad)).toBe(false);
  });

  it('applies the allowlist file as regular expressions', () => {
    const allow = parseAllowlist('^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$\n\n  ^net\\.core\\.somaxconn$\n');
    expect(sysctlPath('net.core.somaxconn', 'eth0', allow)).toBe('net/core/somaxconn');
    expect(() => sysctlPath('net.ipv4.ip_forward', 'eth0', allow)).toThrow(/not allowed/);
  });

  it('merges conf < CNI_ARGS MAC < runtimeConfig < args.cni with keys in any case', () => {
    const conf = parseConf(TuningConf(), { name: 'n', MTU: 1400, Mac: '02:00:00:00:00:01', sysctl: { 'net.core.somaxconn': '5' }, args: { cni: { sysctl: { 'net.core.somaxconn': '6' }, promisc: true } } });
    const t = resolveTuning(conf, 'eth0', '02:00:00:00:00:0A', undefined);
    expect(t).toEqual({ dataDir: '/run/cni/tuning', sysctl: [['net/core/somaxconn', '6']], mac: '02:00:00:00:00:0a'.toLowerCase(), promisc: true, mtu: 1400 });
  });

  it('plans link changes and their inverses as ip batch lines', () => {
    const t = resolveTuning(parseConf(TuningConf(), { name: 'n', mtu: 1300, promisc: true, txQLen: 5 }), 'eth0', undefined, undefined);
    const observed = { address: '02:aa:bb:cc:dd:ee', mtu: 1500, flags: ['BROADCAST', 'UP'], txqlen: 1000 };
    expect(originalAttrs(t, observed)).toEqual({ mtu: 1500, promisc: false, txQLen: 1000 });
    expect(planLinkSet('eth0', originalAttrs(t, observed))).toEqual(['link set dev eth0 mtu 1500', 'link set dev eth0 promisc off', 'link set dev eth0 txqueuelen 1000']);
    expect(diffLink({ mtu: 1300, promisc: true }, observed, 'eth0')).toEqual(['eth0 mtu is 1500, configured 1300', 'eth0 promisc is false, configured true']);
  });
});
