import { readFileSync, writeFileSync } from 'node:fs';
import type { Exec } from '../exec.ts';
import { ProcessError } from '../exec.ts';
import { nsenterNet } from './netns-guard.ts';

/**
 * The one way to read and write sysctls (paths relative to /proc/sys, `net/ipv4/ip_forward`): in
 * the host namespace in-process (ensureHostSysctl), inside a container's namespace with `sysctl`
 * (readSysctlsIn, writeSysctlsIn), or together with an `ip` batch there (ipBatchInNetns).
 */
export interface Sysctl {
  path: string;
  value: string;
}

const SYSCTL_PATH = /^net\/[A-Za-z0-9_./@-]+$/;

/** A numeric net.* sysctl with a plain path: what may go into a file path or the batch prelude. */
export function validSysctl(s: Sysctl): boolean {
  return SYSCTL_PATH.test(s.path) && !s.path.split('/').includes('..') && /^[0-9]{1,10}$/.test(s.value);
}

const refuse = (what: unknown) => new Error(`refusing sysctl ${JSON.stringify(what)}`);

/** Sets a sysctl of the host (our own) namespace in-process, writing only when it differs. */
export function ensureHostSysctl(s: Sysctl): void {
  if (!validSysctl(s)) throw refuse(s);
  const file = `/proc/sys/${s.path}`;
  if (readFileSync(file, 'utf8').trim() !== s.value) writeFileSync(file, s.value);
}

/** Reads a sysctl of the host (our own) namespace. */
export function hostSysctl(path: string): string {
  if (!validSysctl({ path, value: '0' })) throw refuse(path);
  return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
}

/**
 * A net.* path `sysctl` takes as one argument: slash-separated (so dots in interface names stay),
 * no empty, `.` or `..` segment, no `=` (sysctl -w splits there) and no control character.
 */
function sysctlArgProblem(path: string, value = ''): boolean {
  const segments = path.split('/');
  return segments[0] !== 'net' || segments.length < 2 || segments.some((s) => s === '' || s === '.' || s === '..') || /[=\x00-\x1f\x7f]/.test(path) || /[\x00\n]/.test(value);
}

const sysctlIn = (netns: string) => [...nsenterNet(netns), 'sysctl'];

/** Reads sysctls in the namespace at `netns`: one spawn. Throws the ProcessError of a failed read. */
export async function readSysctlsIn(exec: Exec, netns: string, paths: readonly string[]): Promise<Record<string, string>> {
  if (paths.length === 0) return {};
  for (const p of paths) if (sysctlArgProblem(p)) throw refuse(p);
  const out = await exec.runAsync([...sysctlIn(netns), '-n', '--', ...paths], { allowFailure: true });
  const values = out.stdout.split('\n');
  if (out.status !== 0 || values.length < paths.length) throw new ProcessError(out);
  return Object.fromEntries(paths.map((p, i) => [p, values[i]!]));
}

/** Writes sysctls in the namespace at `netns`: one spawn (`-q` keeps stdout quiet). Throws a ProcessError. */
export async function writeSysctlsIn(exec: Exec, netns: string, sysctls: readonly Sysctl[]): Promise<void> {
  if (sysctls.length === 0) return;
  for (const s of sysctls) if (sysctlArgProblem(s.path, s.value)) throw refuse(s);
  const out = await exec.runAsync([...sysctlIn(netns), '-q', '-w', '--', ...sysctls.map((s) => `${s.path}=${s.value}`)], { allowFailure: true });
  if (out.status !== 0) throw new ProcessError(out);
}
