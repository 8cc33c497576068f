import type { Exec } from '../../lib/exec.ts';
import { ProcessError } from '../../lib/exec.ts';
import { parseIpJson } from '../../lib/ip/ip.ts';

/** Runs many tc commands in one spawn (host namespace); `force` keeps going past failing lines. */
export async function tcBatch(exec: Exec, lines: readonly string[], force = false): Promise<void> {
  if (lines.length === 0) return;
  const out = await exec.runAsync(['tc', ...(force ? ['-force'] : []), '-batch', '-'], { input: lines.join('\n') + '\n', allowFailure: true });
  if (out.status !== 0 && !force) throw new ProcessError(out);
}

export interface Qdisc {
  kind: string;
  handle: string;
  root?: boolean;
  options?: { rate?: number; burst?: number };
}

/** The qdiscs of each device (CHECK only); a missing device has none. */
export async function observeQdiscs(exec: Exec, devs: readonly string[]): Promise<Map<string, Qdisc[]>> {
  const out = new Map<string, Qdisc[]>();
  for (const dev of devs) {
    const r = await exec.runAsync(['tc', '-json', 'qdisc', 'show', 'dev', dev], { allowFailure: true });
    out.set(dev, r.status === 0 ? parseIpJson<Qdisc[]>(r.stdout) : []);
  }
  return out;
}
