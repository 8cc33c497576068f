import { writeFileSync } from 'node:fs';
import type { Exec } from '../exec.ts';
import { batchError } from './ip.ts';
import { netnsEnterer } from './netns-enter.ts';
import { nsenterNet } from './netns-guard.ts';
import { validSysctl, type Sysctl } from './sysctl.ts';

// Writes "$path $value" pairs from argv (best effort, as the reference plugins do), then becomes ip.
const PRELUDE = 'while [ $# -gt 1 ]; do { echo "$2" > "/proc/sys/$1"; } 2>/dev/null; shift 2; done; exec ip -json -batch -';

/** Best effort, as the reference plugins (IPv6 may be off, so its files absent). */
function writeSysctls(sysctls: readonly Sysctl[]): void {
  for (const s of sysctls) {
    try {
      writeFileSync(`/proc/sys/${s.path}`, s.value);
    } catch {
      // not fatal
    }
  }
}

/**
 * Runs ip batch lines inside the namespace at `netns`, after writing per-namespace sysctls there
 * (/proc/sys/net follows the writer's namespace). In the binary this thread enters the namespace,
 * writes them and spawns `ip` there: one exec. Elsewhere one nsenter → sh → ip, with paths and values
 * as argv, never as script text.
 */
export async function ipBatchInNetns(exec: Exec, netns: string, lines: readonly string[], sysctls: readonly Sysctl[] = []): Promise<string> {
  for (const s of sysctls) if (!validSysctl(s)) throw new Error(`refusing sysctl ${JSON.stringify(s)}`);
  const input = lines.join('\n') + '\n';
  const enter = await netnsEnterer();
  const out = await (enter
    ? enter(netns, () => {
        writeSysctls(sysctls);
        return exec.runAsync(['ip', '-json', '-batch', '-'], { input, allowFailure: true });
      })
    : exec.runAsync([...nsenterNet(netns), 'sh', '-c', PRELUDE, 'sh', ...sysctls.flatMap((s) => [s.path, s.value])], { input, allowFailure: true }));
  if (out.status !== 0) throw batchError('ip', lines, out);
  return out.stdout;
}
