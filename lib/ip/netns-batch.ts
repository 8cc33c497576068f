import type { Exec } from '../exec.ts';
import { ProcessError } from '../exec.ts';
import { IpBatchError } from './ip.ts';

/** A sysctl under /proc/sys, relative (`net/ipv6/conf/eth0/accept_dad`), and the value to write. */
export interface Sysctl {
  path: string;
  value: string;
}

const SYSCTL_PATH = /^net\/[A-Za-z0-9_./@-]+$/;

export function validSysctl(s: Sysctl): boolean {
  return SYSCTL_PATH.test(s.path) && !s.path.split('/').includes('..') && /^[0-9]{1,10}$/.test(s.value);
}

// Writes "$path $value" pairs from argv (best effort, as the reference plugins do), then becomes ip.
const PRELUDE = 'while [ $# -gt 1 ]; do { echo "$2" > "/proc/sys/$1"; } 2>/dev/null; shift 2; done; exec ip -json -batch -';

/**
 * Runs ip batch lines inside the namespace at `netns`, after writing per-namespace sysctls there:
 * one spawn (nsenter → sh → ip). /proc/sys/net follows the reader's namespace, so the writes must
 * happen inside it. Paths and values travel as argv, never as script text.
 */
export async function ipBatchInNetns(exec: Exec, netns: string, lines: readonly string[], sysctls: readonly Sysctl[] = []): Promise<string> {
  for (const s of sysctls) if (!validSysctl(s)) throw new Error(`refusing sysctl ${JSON.stringify(s)}`);
  const argv = ['nsenter', `--net=${netns}`, 'sh', '-c', PRELUDE, 'sh', ...sysctls.flatMap((s) => [s.path, s.value])];
  const out = await exec.runAsync(argv, { input: lines.join('\n') + '\n', allowFailure: true });
  if (out.status !== 0) {
    if (/Command failed -:\d+/.test(out.stderr)) throw new IpBatchError(lines, out);
    throw new ProcessError(out);
  }
  return out.stdout;
}
