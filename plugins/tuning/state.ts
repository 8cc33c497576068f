import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/store/atomic-file.ts';
import type { SavedState } from './plan.ts';

/** One file per attachment, named as the reference plugin names it (`<containerID>_<ifname>.json`). */
export const stateFile = (dataDir: string, containerId: string, ifname: string) => join(dataDir, `${containerId}_${ifname}.json`);

/** Written atomically (temp + rename), readable by root only. */
export function saveState(dataDir: string, state: SavedState): void {
  writeFileAtomic(stateFile(dataDir, state.containerId, state.ifname), JSON.stringify(state));
}

/** The saved state, or undefined when there is none (or it is not ours to read). */
export function loadState(dataDir: string, containerId: string, ifname: string): SavedState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile(dataDir, containerId, ifname), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as Partial<SavedState> & Record<string, unknown>;
    // A file the reference plugin wrote holds just the link attributes.
    if (s.link === undefined) return { network: '', containerId, ifname, link: s as SavedState['link'], sysctl: {} };
    return { network: s.network ?? '', containerId, ifname, link: s.link, sysctl: s.sysctl ?? {} };
  } catch {
    return undefined;
  }
}

export function removeState(dataDir: string, containerId: string, ifname: string): void {
  rmSync(stateFile(dataDir, containerId, ifname), { force: true });
}

/** Every saved state of `network` in dataDir (for GC). */
export function listStates(dataDir: string, network: string): SavedState[] {
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch {
    return [];
  }
  const out: SavedState[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const s = JSON.parse(readFileSync(join(dataDir, name), 'utf8')) as SavedState;
      if (s.network === network && typeof s.containerId === 'string' && typeof s.ifname === 'string') out.push(s);
    } catch {
      // not a state file of ours
    }
  }
  return out;
}
