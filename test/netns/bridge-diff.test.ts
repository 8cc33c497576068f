import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/** The container's kernel state, minus what is random by design (MACs, the veth's peer index). */
function namespaceState(ns: string) {
  const links = ipJson<any[]>(['addr', 'show'], ns).map((l) => ({
    ifname: l.ifname,
    flags: l.flags,
    mtu: l.mtu,
    operstate: l.operstate,
    addrs: (l.addr_info ?? [])
      .filter((a: any) => a.scope !== 'link')
      .map((a: any) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.scope, broadcast: a.broadcast, tentative: !!a.tentative })),
  }));
  const routes = ipJson<any[]>(['route', 'show', 'table', 'all'], ns).filter((r) => r.table !== 'local');
  const sysctl = (p: string) => sh(['ip', 'netns', 'exec', ns, 'cat', `/proc/sys/${p}`]).trim();
  return { links, routes, accept_dad: sysctl('net/ipv6/conf/eth0/accept_dad'), arp_notify: sysctl('net/ipv4/conf/eth0/arp_notify') };
}

function normalize(result: any, bridge: string) {
  return JSON.parse(
    JSON.stringify(result)
      .replaceAll(bridge, 'BRIDGE')
      .replace(/veth[0-9a-f]{8}/g, 'VETH')
      .replace(/"mac":"[0-9a-f:]{17}"/g, '"mac":"MAC"')
      .replace(/"sandbox":"[^"]*"/g, '"sandbox":"NS"'),
  );
}

const CASES: Record<string, (v4: string, v6: string) => Record<string, unknown>> = {
  'gateway, IPv4, ipMasq': (v4) => ({ isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: `${v4}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] } }),
  'default gateway, dual-stack, mtu': (v4, v6) => ({ isDefaultGateway: true, mtu: 1450, ipam: { type: 'host-local', ranges: [[{ subnet: `${v4}.0/24` }], [{ subnet: `${v6}::/64` }]] } }),
  'no gateway, hairpin, IPAM routes': (v4) => ({ hairpinMode: true, ipam: { type: 'host-local', subnet: `${v4}.0/24`, gateway: `${v4}.254`, routes: [{ dst: '192.0.2.0/24' }, { dst: '198.51.100.0/24', gw: `${v4}.9` }] } }),
  'layer 2 only (no IPAM)': () => ({}),
};

describe('bridge vs /usr/lib/cni/bridge', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  for (const [label, make] of Object.entries(CASES)) {
    for (const cniVersion of ['0.4.0', '1.0.0']) {
      it(`${label} at ${cniVersion}: same result and same namespace state`, () => {
        const h = createHash('sha256').update(s.prefix + label + cniVersion).digest();
        const v4 = `10.${100 + (h[0]! % 40)}.${h[1]!}`;
        const v6 = `fd${h[2]!.toString(16).padStart(2, '0')}:${h.readUInt16BE(3).toString(16)}`;
        const run = (bin: string) => {
          const bridge = s.link(s.name('br'));
          const ns = s.netns();
          const id = s.name('c');
          const base = make(v4, v6);
          const ipam = base.ipam ? { ...(base.ipam as object), dataDir: s.tmpdir() } : undefined;
          const conf = { cniVersion, name: `${s.prefix}-diff`, type: 'bridge', bridge, ...base, ...(ipam ? { ipam } : {}) };
          const e = { CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: bin };
          const add = execPlugin(join(bin, 'bridge'), { ...e, CNI_COMMAND: 'ADD' }, conf);
          expect(add.status, `${bin}: ${add.stdout}`).toBe(0);
          const state = namespaceState(ns.name);
          const bridgeState = ipJson<any[]>(['addr', 'show', bridge])[0];
          const out = { result: normalize(add.json, bridge), state, bridgeAddrs: bridgeState.addr_info.filter((a: any) => a.scope !== 'link').map((a: any) => `${a.local}/${a.prefixlen}`), bridgeMtu: bridgeState.mtu };
          const del = execPlugin(join(bin, 'bridge'), { ...e, CNI_COMMAND: 'DEL' }, { ...conf, prevResult: add.json });
          expect(del.status, del.stdout).toBe(0);
          tryRun(['ip', 'link', 'del', bridge]); // the next run reuses the subnet
          return out;
        };
        const ref = run(REF_BIN);
        const ours = run(OUR_BIN);
        expect(ours).toEqual(ref);
      });
    }
  }
});
