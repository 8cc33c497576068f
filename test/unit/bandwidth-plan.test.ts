import { describe, expect, it } from 'vitest';
import { parseConf } from '../../lib/cni/conf.ts';
import { BandwidthConf, resolveLimits } from '../../plugins/bandwidth/conf.ts';
import { ifbName, planAdd, planDel, vethPeerProblem } from '../../plugins/bandwidth/plan.ts';

describe('bandwidth', () => {
  it('names the ifb as the reference plugin does', () => {
    expect(ifbName('bwnet', 'abc')).toBe('bwp82e64356b3c9'); // measured with /usr/lib/cni/bandwidth
  });

  it('lets runtimeConfig.bandwidth (CRI capitalized keys) replace the static entry', () => {
    const conf = parseConf(BandwidthConf(), { name: 'n', ingressRate: 1, ingressBurst: 1, runtimeConfig: { bandwidth: { EgressRate: 1000, EgressBurst: 4294967295 } } });
    expect(resolveLimits(conf)).toEqual({ egress: { rate: 1000, burst: 4294967295 } });
    expect(resolveLimits(parseConf(BandwidthConf(), { name: 'n' }))).toEqual({});
  });

  it('refuses half-set buckets and bursts over 4GB', () => {
    const limits = (e: object) => () => resolveLimits(parseConf(BandwidthConf(), { name: 'n', ...e }));
    expect(limits({ ingressRate: 5 })).toThrow('if ingressRate is set, ingressBurst must also be set');
    expect(limits({ egressBurst: 5 })).toThrow('if egressBurst is set, egressRate must also be set');
    expect(limits({ egressRate: 5, egressBurst: 8 * 0xffffffff })).toThrow('egressBurst cannot be more than 4GB');
    expect(limits({ egressRate: -5, egressBurst: 1 })).toThrow(/egressRate/);
  });

  it('plans tbf on the veth, an ifb with a redirect for egress, and the inverse', () => {
    const plan = planAdd({ ingress: { rate: 8000, burst: 800 }, egress: { rate: 16000, burst: 1600 } }, 'veth1', 'bwp0', 'tscni-bandwidth:x', 1450);
    expect(plan).toEqual({
      ip: ['link add bwp0 mtu 1450 type ifb', 'link set dev bwp0 alias tscni-bandwidth:x up'],
      tc: [
        'qdisc add dev veth1 root handle 1: tbf rate 8000bit burst 100b latency 25ms',
        'qdisc add dev veth1 handle ffff: ingress',
        'filter add dev veth1 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev bwp0',
        'qdisc add dev bwp0 root handle 1: tbf rate 16000bit burst 200b latency 25ms',
      ],
    });
    expect(planDel(undefined, 'bwp0')).toEqual({ ip: ['link del dev bwp0'], tc: [] });
    expect(planDel('veth1', 'bwp0').tc).toEqual(['qdisc del dev veth1 root handle 1:', 'qdisc del dev veth1 handle ffff: ingress']);
  });
});

describe('vethPeerProblem: the host interface shaped must be the container interface’s veth peer', () => {
  const veth = { linkinfo: { info_kind: 'veth' }, flags: [], mtu: 1500 };
  const host = { ...veth, ifname: 'vethA', ifindex: 12, link_index: 2, link_netnsid: 0 };
  const ctr = { ...veth, ifname: 'eth0', ifindex: 2, link_index: 12, link_netnsid: 0 };

  it('accepts a pair that names each other across namespaces', () => {
    expect(vethPeerProblem(host, ctr)).toBeUndefined();
  });

  it('refuses a non-veth, a veth of another pair, and a pair within one namespace', () => {
    expect(vethPeerProblem({ ...host, ifname: 'eth9', linkinfo: {} }, ctr)).toBe('eth9 is not a veth');
    expect(vethPeerProblem({ ...host, ifindex: 13 }, ctr)).toBe('vethA (ifindex 13, peer 2) is not the peer of eth0 (ifindex 2, peer 12)');
    expect(vethPeerProblem(host, { ...ctr, ifindex: 3 })).toMatch(/is not the peer of eth0/);
    expect(vethPeerProblem({ ...host, link_netnsid: undefined }, ctr)).toMatch(/same namespace/);
    expect(vethPeerProblem(host, { ...ctr, linkinfo: { info_kind: 'dummy' } })).toBe('container interface eth0 is not a veth');
  });
});
