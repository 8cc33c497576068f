import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cnitool, execPlugin, writeConflist } from '../support/cni.ts';
import { OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';
import { REFERENCE_VERSIONS } from '../support/versions.ts';

/**
 * Differential table: each case runs the same steps through /usr/lib/cni/host-local and ours, each
 * with its own store and container IDs, and compares exit codes, results and the files left in the
 * store. Where we deliberately differ (error codes and texts) the case says so.
 */
type Step = { cmd?: 'ADD' | 'DEL' | 'CHECK'; id?: string; ifname?: string; args?: string; expectFail?: boolean };
type Case = {
  name: string;
  /** Why the store may differ in last_reserved_ip.N: a deliberate deviation. */
  lastReservedDiffers?: string;
  cniVersion?: string; ipam?: Record<string, unknown>; conf?: Record<string, unknown>; steps?: Step[] };

const V4 = { ranges: [[{ subnet: '10.1.2.0/24' }]] };
const DUAL = { ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00:1::/64' }]] };
const add = (id = 'a', extra: Partial<Step> = {}): Step => ({ cmd: 'ADD', id, ...extra });
const fails = (s: Step): Step => ({ ...s, expectFail: true });

const CASES: Case[] = [
  ...REFERENCE_VERSIONS.map((v) => ({ name: `single range at ${v}`, cniVersion: v, ipam: { ...V4, routes: [{ dst: '0.0.0.0/0' }] }, steps: [add('a'), add('b')] })),
  { name: 'dual-stack sets', ipam: DUAL, steps: [add('a'), add('b')] },
  { name: 'dual-stack at 0.2.0', cniVersion: '0.2.0', ipam: { ...DUAL, routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] } },
  { name: 'multi-range pool spills into the next range', ipam: { ranges: [[{ subnet: '10.1.2.0/30' }, { subnet: '10.1.3.0/29', rangeStart: '10.1.3.4' }]] }, steps: ['a', 'b', 'c', 'd'].map((id) => add(id)) },
  { name: 'rangeStart and rangeEnd', ipam: { ranges: [[{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.100', rangeEnd: '10.1.2.101' }]] }, steps: [add('a'), add('b'), fails(add('c'))] },
  { name: 'custom gateway outside the range', ipam: { ranges: [[{ subnet: '10.1.2.0/24', gateway: '10.1.2.254' }]] } },
  { name: 'custom gateway inside the range is skipped', ipam: { ranges: [[{ subnet: '10.1.2.0/29', gateway: '10.1.2.2' }]] }, steps: [add('a'), add('b')] },
  { name: 'legacy single-range keys', ipam: { subnet: '10.1.4.0/24', rangeStart: '10.1.4.10', gateway: '10.1.4.1', routes: [{ dst: '10.0.0.0/8', gw: '10.1.4.1' }] } },
  { name: 'legacy keys before ranges', ipam: { subnet: '10.1.4.0/24', ranges: [[{ subnet: 'fd00:4::/64' }]] } },
  { name: 'runtimeConfig.ipRanges first', ipam: V4, conf: { runtimeConfig: { ipRanges: [[{ subnet: 'fd00:9::/120' }]] } } },
  { name: 'IPv6 only', ipam: { ranges: [[{ subnet: 'fd00:2::/120' }]] }, steps: [add('a'), add('b')] },
  { name: 'requested IP in CNI_ARGS', ipam: V4, steps: [add('a', { args: 'IP=10.1.2.77' }), add('b')] },
  { name: 'requested IP in args.cni.ips', ipam: V4, conf: { args: { cni: { ips: ['10.1.2.88'] } } } },
  { name: 'requested IP in runtimeConfig.ips', ipam: V4, conf: { runtimeConfig: { ips: ['10.1.2.99'] } } },
  { name: 'requested dual-stack IPs', ipam: DUAL, conf: { args: { cni: { ips: ['fd00:1::99', '10.1.2.99'] } } } },
  { name: 'requested IP already taken', ipam: V4, steps: [add('a', { args: 'IP=10.1.2.77' }), fails(add('b', { args: 'IP=10.1.2.77' })), add('c')] },
  { name: 'requested IP is the gateway', ipam: V4, steps: [fails(add('a', { args: 'IP=10.1.2.1' }))] },
  {
    name: 'requested IP outside every set',
    lastReservedDiffers: 'we refuse before touching the store; the reference first reserves an address for set 0, then releases it, leaving last_reserved_ip.0',
    ipam: V4, steps: [fails(add('a', { args: 'IP=10.9.9.9' }))] },
  { name: 'a failed requested IP leaves no reservation in other sets', ipam: DUAL, steps: [add('a', { args: 'IP=10.1.2.50' }), fails(add('b', { args: 'IP=10.1.2.50' })), add('c')] },
  { name: 'duplicate ADD of one attachment', ipam: V4, steps: [add('a'), fails(add('a'))] },
  { name: 'one container, two interfaces', ipam: DUAL, steps: [add('a', { ifname: 'eth0' }), add('a', { ifname: 'eth1' })] },
  { name: 'exhaustion', ipam: { ranges: [[{ subnet: '10.1.2.0/30' }]] }, steps: [add('a'), fails(add('b'))] },
  { name: 'round-robin after DEL', ipam: V4, steps: [add('a'), add('b'), { cmd: 'DEL', id: 'a' }, add('c'), add('a')] },
  { name: 'DEL of an unknown container, twice', ipam: V4, steps: [{ cmd: 'DEL', id: 'x' }, { cmd: 'DEL', id: 'x' }] },
  { name: 'CHECK after ADD, CHECK of an unknown container', ipam: V4, steps: [add('a'), { cmd: 'CHECK', id: 'a' }, fails({ cmd: 'CHECK', id: 'z' })] },
  { name: 'unknown CNI_ARGS refused, IgnoreUnknown accepted', ipam: V4, steps: [fails(add('a', { args: 'FOO=1' })), add('a', { args: 'IgnoreUnknown=1;FOO=1' })] },
  { name: 'routes with gateways', ipam: { ...DUAL, routes: [{ dst: '0.0.0.0/0', gw: '10.1.2.1' }, { dst: 'fd00:ff::/64' }] } },
  // invalid configs: both refuse (the reference with code 999, we with 7), nothing is stored
  { name: 'invalid: /31', ipam: { ranges: [[{ subnet: '10.1.2.0/31' }]] }, steps: [fails(add())] },
  { name: 'invalid: /127', ipam: { ranges: [[{ subnet: 'fd00::/127' }]] }, steps: [fails(add())] },
  { name: 'invalid: host bits set', ipam: { ranges: [[{ subnet: '10.1.2.1/24' }]] }, steps: [fails(add())] },
  { name: 'invalid: rangeStart outside the subnet', ipam: { ranges: [[{ subnet: '10.1.2.0/24', rangeStart: '10.1.3.1' }]] }, steps: [fails(add())] },
  { name: 'invalid: rangeEnd outside the subnet', ipam: { ranges: [[{ subnet: '10.1.2.0/24', rangeEnd: '10.1.3.1' }]] }, steps: [fails(add())] },
  { name: 'invalid: overlapping sets', ipam: { ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.1.0.0/16' }]] }, steps: [fails(add())] },
  { name: 'invalid: overlapping ranges in a set', ipam: { ranges: [[{ subnet: '10.1.2.0/24' }, { subnet: '10.1.2.0/25' }]] }, steps: [fails(add())] },
  { name: 'invalid: mixed families in a set', ipam: { ranges: [[{ subnet: '10.1.2.0/24' }, { subnet: 'fd00::/64' }]] }, steps: [fails(add())] },
  { name: 'invalid: no ranges', ipam: {}, steps: [fails(add())] },
  { name: 'invalid: bad CIDR', ipam: { subnet: '10.1.2.0/24x' }, steps: [fails(add())] },
  { name: 'invalid: bad gateway', ipam: { ranges: [[{ subnet: '10.1.2.0/24', gateway: '10.1.2.300' }]] }, steps: [fails(add())] },
  { name: 'invalid: two v4 sets at 0.2.0', cniVersion: '0.2.0', ipam: { ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.1.3.0/24' }]] }, steps: [fails(add())] },
  { name: 'invalid: bad requested IP', ipam: V4, steps: [fails(add('a', { args: 'IP=nope' }))] },
];

describe('host-local: ours vs the reference', () => {
  const s = new Scope();
  afterAll(() => s.dispose());
  const root = s.tmpdir();
  const resolv = join(root, 'resolv.conf');
  writeFileSync(resolv, 'nameserver 10.0.0.53\nsearch example.com\noptions ndots:3\n');
  CASES.push({ name: 'resolvConf', ipam: { ...V4, resolvConf: resolv } });

  it('has at least 30 configs', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  for (const c of CASES) {
    it(c.name, () => {
      const run = (bin: string, side: string) => {
        const dataDir = join(root, `${side}-${CASES.indexOf(c)}`);
        const conf = { cniVersion: c.cniVersion ?? '1.0.0', name: 'hlnet', type: 'host-local', ipam: { type: 'host-local', dataDir, ...c.ipam }, ...c.conf };
        const outputs = (c.steps ?? [add()]).map((step) => {
          const id = `${s.prefix}${side}${step.id ?? 'a'}`;
          const r = execPlugin(join(bin, 'host-local'), { CNI_COMMAND: step.cmd ?? 'ADD', CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: step.ifname ?? 'eth0', CNI_PATH: bin, CNI_ARGS: step.args }, conf);
          expect(r.status, `${side} ${step.cmd} ${step.id}: ${r.stdout}${r.stderr}`).toBe(step.expectFail ? 1 : 0);
          if (r.status !== 0) {
            expect(r.json.code).toBeGreaterThan(0); // the reference says 999, we say 7 for bad configs
            return { failed: true };
          }
          return r.json ?? null;
        });
        const store = storeFiles(join(dataDir, 'hlnet'), (id) => id.replace(`${s.prefix}${side}`, ''));
        return { outputs, store: c.lastReservedDiffers ? store.filter((f) => !f.startsWith('last_reserved_ip')) : store };
      };
      expect(run(OUR_BIN, 'o')).toEqual(run(REF_BIN, 'r'));
    });
  }

  it('through cnitool (libcni), ours and the reference agree on ADD, CHECK and DEL', () => {
    const results = ['o', 'r'].map((side) => {
      const confDir = s.tmpdir();
      writeConflist(confDir, { cniVersion: '1.0.0', name: 'hlcnitool', plugins: [{ type: 'host-local', ipam: { type: 'host-local', dataDir: join(root, `cnitool-${side}`), ...DUAL } }] } as never);
      const e = { confDir, pluginDir: side === 'o' ? OUR_BIN : REF_BIN, cacheDir: s.tmpdir(), containerId: `${s.prefix}${side}cni` };
      const added = cnitool('add', 'hlcnitool', '/run/netns/none', e);
      const checked = cnitool('check', 'hlcnitool', '/run/netns/none', e);
      const deleted = cnitool('del', 'hlcnitool', '/run/netns/none', e);
      return { add: [added.status, added.json], check: checked.status, del: deleted.status, left: storeFiles(join(root, `cnitool-${side}`, 'hlcnitool'), () => '') };
    });
    expect(results[0]).toEqual(results[1]);
    expect(results[0]!.add[0]).toBe(0);
    expect(results[0]!.left.filter((f) => !f.startsWith('last_reserved'))).toEqual([]);
  });
});

/** The store's reference-visible files (addresses with their owners, last_reserved_ip.N), IDs made comparable. */
function storeFiles(dir: string, plainId: (id: string) => string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n !== 'lock' && !n.startsWith('.'))
    .sort()
    .map((n) => {
      const text = readFileSync(join(dir, n), 'utf8');
      return n.startsWith('last_reserved_ip') ? `${n}=${text}` : `${n}=${plainId(text.split('\r\n')[0]!)}|${text.split('\r\n')[1]}`;
    });
}
