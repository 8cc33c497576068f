import type { Exec } from '../exec.ts';
import type { Family } from '../net/ip.ts';
import { iptablesRestore, iptablesSave, restoreScript, type SavedTable } from './iptables.ts';

/**
 * Reads a table, plans restore lines from what is there, applies them as one transaction. Shared
 * chains are created with `-N` (a restore `:CHAIN` line would flush another writer's rules), so a
 * concurrent writer makes the transaction fail instead of clobbering it: then we read and plan again.
 */
export async function reconcileTable(exec: Exec, family: Family, table: string, plan: (current: SavedTable) => string[], attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const lines = plan(await iptablesSave(exec, family, table));
    if (lines.length === 0) return;
    try {
      return await iptablesRestore(exec, family, restoreScript(table, lines));
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

/** `-A CHAIN spec` exists in a saved table (spec as iptables-save prints it). */
export const hasRule = (t: SavedTable, chain: string, spec: string): boolean => t.rules.some((r) => r.chain === chain && r.spec === spec);
