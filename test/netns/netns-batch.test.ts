import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processExec } from '../../lib/exec.ts';
import { ipBatchInNetns } from '../../lib/ip/netns-batch.ts';
import type { Sysctl } from '../../lib/ip/sysctl.ts';
import { ROOT } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

const BUN = join(ROOT, 'node_modules', '.bin', 'bun');
const RUNNER = join(ROOT, 'test', 'support', 'netns-batch-runner.ts');

/** The two ways in: nsenter → sh → ip under Node (here, in-process), setns(2) + one ip under bun. */
const RUNTIMES: Record<string, (netns: string, lines: string[], sysctls: Sysctl[]) => Promise<string>> = {
  'node (nsenter sh ip)': async (netns, lines, sysctls) => {
    try {
      return await ipBatchInNetns(processExec, netns, lines, sysctls);
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  },
  'bun (setns, one ip)': async (netns, lines, sysctls) =>
    spawnSync(BUN, [RUNNER, netns, JSON.stringify(lines), JSON.stringify(sysctls)], { encoding: 'utf8' }).stdout,
};

const hostSysctl = (path: string) => readFileSync(`/proc/sys/${path}`, 'utf8').trim();

describe('ipBatchInNetns', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  for (const [runtime, run] of Object.entries(RUNTIMES)) {
    it(`${runtime}: writes the namespace's sysctls and runs the batch there, the host untouched`, async () => {
      const ns = s.netns();
      sh(['ip', '-n', ns.name, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
      const dummy = `${s.prefix}v`;
      s.link(dummy);
      const before = hostSysctl('net/ipv4/conf/lo/arp_notify');
      const wanted = before === '1' ? '0' : '1';

      const out = await run(ns.path, [`link add ${dummy} type veth peer name ${dummy}p`, `link show dev ${dummy}`], [{ path: 'net/ipv4/conf/probe0/arp_notify', value: '1' }, { path: 'net/ipv4/conf/lo/arp_notify', value: wanted }]);

      expect(JSON.parse(out)[0].ifname).toBe(dummy);
      expect(tryRun(['ip', '-n', ns.name, 'link', 'show', dummy]).status).toBe(0);
      expect(tryRun(['ip', 'link', 'show', dummy]).status).not.toBe(0);
      expect(sh(['ip', 'netns', 'exec', ns.name, 'cat', '/proc/sys/net/ipv4/conf/probe0/arp_notify']).trim()).toBe('1');
      expect(sh(['ip', 'netns', 'exec', ns.name, 'cat', '/proc/sys/net/ipv4/conf/lo/arp_notify']).trim()).toBe(wanted);
      expect(hostSysctl('net/ipv4/conf/lo/arp_notify')).toBe(before);
    });

    it(`${runtime}: a failing line is reported with its number, and a missing namespace fails`, async () => {
      const ns = s.netns();
      const failed = await run(ns.path, ['link set lo up', 'link set nosuchdev up'], []);
      expect(failed).toMatch(/^error: ip: "link set nosuchdev up"/);
      expect(await run(`/run/netns/${s.prefix}-gone`, ['link show'], [])).toMatch(/^error: .*(No such file|ENOENT)/);
    });
  }
});
