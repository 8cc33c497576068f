import { readFileSync, writeFileSync } from 'node:fs';
import { validSysctl, type Sysctl } from './netns-batch.ts';

/** Sets a sysctl of the host (our own) namespace in-process, writing only when it differs. */
export function ensureHostSysctl(s: Sysctl): void {
  if (!validSysctl(s)) throw new Error(`refusing sysctl ${JSON.stringify(s)}`);
  const file = `/proc/sys/${s.path}`;
  if (readFileSync(file, 'utf8').trim() !== s.value) writeFileSync(file, s.value);
}
