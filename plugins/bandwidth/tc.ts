import type { Exec } from '../../lib/exec.ts';
import { batchLine } from '../../lib/ip/ip.ts';
import { readBatch } from '../../lib/ip/read-batch.ts';

export interface Qdisc {
  kind: string;
  handle: string;
  root?: boolean;
  options?: { rate?: number; burst?: number };
}

/** The qdiscs of each device (CHECK only), read by one `tc` spawn; a missing device has none. */
export async function observeQdiscs(exec: Exec, devs: readonly string[]): Promise<Map<string, Qdisc[]>> {
  const reads = await readBatch(exec, devs.map((dev) => batchLine('qdisc', 'show', 'dev', dev)), { tool: 'tc' });
  return new Map(devs.map((dev, i) => [dev, reads[i] as Qdisc[]]));
}
