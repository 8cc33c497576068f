import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cnitool, execPlugin, writeConflist, type ExecEnv } from '../support/cni.ts';
import { ipJson } from '../support/kernel.ts';
import { OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope, sh } from '../support/scope.ts';
import { ALL_VERSIONS, WITH_CHECK } from '../support/versions.ts';

const OURS = join(OUR_BIN, 'loopback');
const REF = join(REF_BIN, 'loopback');

describe('loopback', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** A fresh namespace with lo down, so ADD has something to do. */
  const netnsLoDown = () => {
    const ns = s.netns();
    sh(['ip', '-n', ns.name, 'link', 'set', 'lo', 'down']);
    return ns;
  };
  const lo = (ns: string) => ipJson<any[]>(['addr', 'show', 'lo'], ns)[0];
  const loUp = (ns: string) => lo(ns).flags.includes('UP') as boolean;
  const envFor = (ns: { path: string }, command: string, extra: Partial<ExecEnv> = {}): ExecEnv => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: `${s.prefix}-ctr`,
    CNI_NETNS: ns.path,
    CNI_IFNAME: 'lo',
    CNI_PATH: OUR_BIN,
    ...extra,
  });
  const conf = (cniVersion: string) => ({ cniVersion, name: 'lo-net', type: 'loopback' });

  describe('direct exec', () => {
    for (const cniVersion of ALL_VERSIONS) {
      it(`ADD brings lo up, DEL brings it down, DEL again succeeds at ${cniVersion}`, () => {
        const ns = netnsLoDown();
        const add = execPlugin(OURS, envFor(ns, 'ADD'), conf(cniVersion));
        expect(add.status, add.stdout + add.stderr).toBe(0);
        expect(add.json.cniVersion).toBe(cniVersion);
        if (cniVersion < '0.3.0') {
          expect(add.json).toEqual({ cniVersion, ip4: { ip: '127.0.0.1/8' }, ip6: { ip: '::1/128' }, dns: {} });
        } else {
          expect(add.json.interfaces).toEqual([{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: ns.path }]);
          expect(add.json.ips.map((ip: any) => ip.address)).toEqual(['127.0.0.1/8', '::1/128']);
        }
        expect(loUp(ns.name)).toBe(true);
        expect(lo(ns.name).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(['127.0.0.1/8', '::1/128']);
        for (let i = 0; i < 2; i++) {
          const del = execPlugin(OURS, envFor(ns, 'DEL'), conf(cniVersion));
          expect(del.status, del.stdout + del.stderr).toBe(0);
          expect(del.stdout).toBe('');
          expect(loUp(ns.name)).toBe(false);
        }
      });
    }

    for (const cniVersion of WITH_CHECK) {
      it(`CHECK passes while lo is up and fails once it is down at ${cniVersion}`, () => {
        const ns = netnsLoDown();
        expect(execPlugin(OURS, envFor(ns, 'ADD'), conf(cniVersion)).status).toBe(0);
        const ok = execPlugin(OURS, envFor(ns, 'CHECK'), { ...conf(cniVersion), prevResult: execPlugin(OURS, envFor(ns, 'ADD'), conf(cniVersion)).json });
        expect(ok.status, ok.stdout).toBe(0);
        expect(ok.stdout).toBe('');
        sh(['ip', '-n', ns.name, 'link', 'set', 'lo', 'down']);
        const bad = execPlugin(OURS, envFor(ns, 'CHECK'), conf(cniVersion));
        expect(bad.status).toBe(1);
        expect(bad.json).toMatchObject({ code: 999, msg: 'loopback interface is down' });
      });
    }

    it('works on lo whatever CNI_IFNAME says (as the reference plugin)', () => {
      const ns = netnsLoDown();
      const add = execPlugin(OURS, envFor(ns, 'ADD', { CNI_IFNAME: 'eth0' }), conf('1.0.0'));
      expect(add.status, add.stdout).toBe(0);
      expect(add.json.interfaces[0].name).toBe('lo');
      expect(loUp(ns.name)).toBe(true);
    });

    it('DEL succeeds when the namespace is gone or not given (containerd sends CNI_NETNS="")', () => {
      const ns = netnsLoDown();
      expect(execPlugin(OURS, envFor(ns, 'ADD'), conf('1.0.0')).status).toBe(0);
      sh(['ip', 'netns', 'del', ns.name]);
      for (const netns of [ns.path, '', undefined]) {
        const del = execPlugin(OURS, envFor(ns, 'DEL', { CNI_NETNS: netns }), conf('1.0.0'));
        expect(del.status, `${netns}: ${del.stdout}`).toBe(0);
      }
    });

    it('ADD into a namespace that does not exist is code 3 (spec: unknown container)', () => {
      const add = execPlugin(OURS, envFor({ path: `/run/netns/${s.prefix}-gone` }, 'ADD'), conf('1.0.0'));
      expect(add.status).toBe(1);
      expect(add.json).toMatchObject({ code: 3, msg: `network namespace /run/netns/${s.prefix}-gone does not exist` });
    });

    it('GC and STATUS at 1.1.0 succeed with only CNI_PATH', () => {
      for (const command of ['GC', 'STATUS']) {
        const r = execPlugin(OURS, { CNI_COMMAND: command, CNI_PATH: OUR_BIN }, { ...conf('1.1.0'), ...(command === 'GC' ? { 'cni.dev/valid-attachments': [] } : {}) });
        expect(r.status, r.stdout).toBe(0);
        expect(r.stdout).toBe('');
      }
    });

    it('VERSION lists every spec version', () => {
      const r = execPlugin(OURS, { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.1.0' });
      expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ALL_VERSIONS });
    });
  });

  describe('through cnitool (libcni)', () => {
    const viaCnitool = (cniVersion: string, ifname: string) => {
      const ns = netnsLoDown();
      const confDir = s.tmpdir();
      const net = `${s.prefix}-lo`;
      writeConflist(confDir, { cniVersion, name: net, plugins: [{ type: 'loopback' }] });
      const e = { confDir, pluginDir: OUR_BIN, cacheDir: s.tmpdir(), ifname };
      return { ns, run: (verb: 'add' | 'check' | 'del') => cnitool(verb, net, ns.path, e) };
    };

    it('ADD and DEL at 0.3.1 with CNI_IFNAME=lo, as containerd CRI calls it; CHECK is refused below 0.4.0', () => {
      const { ns, run } = viaCnitool('0.3.1', 'lo');
      const add = run('add');
      expect(add.status, add.stderr).toBe(0);
      expect(add.json.ips).toEqual([
        { version: '4', interface: 0, address: '127.0.0.1/8' },
        { version: '6', interface: 0, address: '::1/128' },
      ]);
      expect(loUp(ns.name)).toBe(true);
      const check = run('check');
      expect(check.status).toBe(1);
      expect(check.stderr).toContain('does not support the CHECK command');
      expect(run('del').status).toBe(0);
      expect(loUp(ns.name)).toBe(false);
    });

    for (const cniVersion of WITH_CHECK.filter((v) => v !== '1.1.0')) {
      it(`ADD, CHECK, DEL at ${cniVersion}; CHECK fails when lo went down`, () => {
        const { ns, run } = viaCnitool(cniVersion, 'eth0');
        const add = run('add');
        expect(add.status, add.stderr).toBe(0);
        expect(add.json.cniVersion).toBe(cniVersion);
        expect(add.json.interfaces).toEqual([{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: ns.path }]);
        expect(run('check').status).toBe(0);
        sh(['ip', '-n', ns.name, 'link', 'set', 'lo', 'down']);
        const check = run('check');
        expect(check.status).toBe(1);
        expect(check.stderr).toContain('loopback interface is down');
        expect(run('del').status).toBe(0);
        expect(run('del').status).toBe(0);
        expect(loUp(ns.name)).toBe(false);
      });
    }
  });

  describe(`differential: ours vs ${REF}`, () => {
    /** Runs the same verbs through one binary in a fresh namespace; returns outputs and lo state after each. */
    const trace = (bin: string, cniVersion: string, env: Partial<ExecEnv> = {}) => {
      const ns = netnsLoDown();
      const steps = ['ADD', ...(WITH_CHECK.includes(cniVersion) ? ['CHECK'] : []), 'DEL', 'DEL'].map((command) => {
        const r = execPlugin(bin, { ...envFor(ns, command), CNI_PATH: REF_BIN, ...env }, conf(cniVersion));
        const state = lo(ns.name);
        return { command, status: r.status, json: r.json === undefined ? undefined : JSON.parse(JSON.stringify(r.json).replaceAll(ns.path, 'NETNS')), up: state.flags.includes('UP'), addrs: state.addr_info };
      });
      return steps;
    };

    for (const cniVersion of ['0.4.0', '1.0.0']) {
      it(`same results, exit codes and kernel state at ${cniVersion} (ours also says ips[].version at 0.4.0, see below)`, () => {
        const ours = trace(OURS, cniVersion);
        const ref = trace(REF, cniVersion);
        const strip = (steps: typeof ours) => steps.map((st) => ({ ...st, json: st.json?.ips ? { ...st.json, ips: st.json.ips.map(({ version: _, ...ip }: any) => ip) } : st.json }));
        expect(strip(ours)).toEqual(strip(ref));
      });
    }

    for (const cniVersion of ['0.3.0', '0.3.1', '0.4.0']) {
      it(`spec over reference at ${cniVersion}: ours prints ips[].version, reference 1.1.1 omits it`, () => {
        const [ours] = trace(OURS, cniVersion);
        const [ref] = trace(REF, cniVersion);
        expect(ours!.json.ips.map((ip: any) => ip.version)).toEqual(['4', '6']);
        expect(ref!.json.ips.map((ip: any) => ip.version)).toEqual([undefined, undefined]);
        expect({ ...ours, json: undefined }).toEqual({ ...ref, json: undefined });
      });
    }

    for (const cniVersion of ['0.1.0', '0.2.0']) {
      it(`spec over reference at ${cniVersion}: ours prints the ip4/ip6 shape, reference 1.1.1 prints the 1.0 shape`, () => {
        const ours = trace(OURS, cniVersion);
        const ref = trace(REF, cniVersion);
        expect(ours[0]!.json).toEqual({ cniVersion, ip4: { ip: '127.0.0.1/8' }, ip6: { ip: '::1/128' }, dns: {} });
        expect(ref[0]!.json).toMatchObject({ cniVersion, interfaces: [{ name: 'lo' }] });
        expect(ours.map((st) => ({ ...st, json: undefined }))).toEqual(ref.map((st) => ({ ...st, json: undefined })));
      });
    }

    it('spec over reference at 1.1.0: ours supports it, reference 1.1.1 says code 1', () => {
      const [ours] = trace(OURS, '1.1.0');
      const [ref] = trace(REF, '1.1.0');
      expect(ours).toMatchObject({ status: 0, up: true, json: { cniVersion: '1.1.0' } });
      expect(ref).toMatchObject({ status: 1, up: false, json: { code: 1 } });
    });

    it('spec over reference: CNI_PATH is optional for ADD and DEL (reference 1.1.1 requires it, code 4)', () => {
      const ours = trace(OURS, '1.0.0', { CNI_PATH: undefined });
      const ref = trace(REF, '1.0.0', { CNI_PATH: undefined });
      expect(ours.map((st) => st.status)).toEqual([0, 0, 0, 0]);
      expect(ref.map((st) => [st.status, st.json?.code])).toEqual([[1, 4], [1, 4], [1, 4], [1, 4]]);
    });

    it('the same error codes for the same bad input', () => {
      const cases: { env?: Partial<ExecEnv>; stdin?: unknown }[] = [
        { stdin: '{"cniVersion":' },
        { stdin: { cniVersion: '0.5.0', name: 'n' } },
        { env: { CNI_CONTAINERID: undefined } },
        { env: { CNI_IFNAME: undefined } },
        { env: { CNI_NETNS: undefined } },
        { env: { CNI_COMMAND: 'BOGUS' } },
      ];
      const ns = s.netns();
      for (const c of cases) {
        const run = (bin: string) => execPlugin(bin, { ...envFor(ns, 'ADD'), CNI_PATH: REF_BIN, ...c.env } as ExecEnv, c.stdin ?? conf('1.0.0'));
        const [ours, ref] = [run(OURS), run(REF)];
        expect([ours.status, ours.json?.code], JSON.stringify(c)).toEqual([ref.status, ref.json?.code]);
      }
    });

    it('spec over reference: ADD into a missing namespace is code 3 (reference 1.1.1 says 999)', () => {
      const env = { ...envFor({ path: `/run/netns/${s.prefix}-gone` }, 'ADD'), CNI_PATH: REF_BIN };
      expect(execPlugin(OURS, env, conf('1.0.0')).json.code).toBe(3);
      expect(execPlugin(REF, env, conf('1.0.0')).json.code).toBe(999);
    });

    it('the same through cnitool at 1.0.0', () => {
      const run = (dir: string) => {
        const ns = netnsLoDown();
        const confDir = s.tmpdir();
        writeConflist(confDir, { cniVersion: '1.0.0', name: `${s.prefix}-lo`, plugins: [{ type: 'loopback' }] });
        const e = { confDir, pluginDir: dir, cacheDir: s.tmpdir(), containerId: `${s.prefix}-ctr` };
        return (['add', 'check', 'del'] as const).map((verb) => {
          const r = cnitool(verb, `${s.prefix}-lo`, ns.path, e);
          return { verb, status: r.status, out: r.stdout.replaceAll(ns.path, 'NETNS') && JSON.parse(r.stdout.replaceAll(ns.path, 'NETNS')), up: loUp(ns.name) };
        });
      };
      expect(run(OUR_BIN)).toEqual(run(REF_BIN));
    });
  });
});
