import type { Exec } from '../../lib/exec.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { nsenterNet } from '../../lib/ip/netns-guard.ts';

const inNetns = (netns: string) => [...nsenterNet(netns), 'sysctl'];

/** Reads sysctls (paths relative to /proc/sys) in the namespace at `netns`: one spawn. */
export async function readSysctls(exec: Exec, netns: string, paths: readonly string[]): Promise<Record<string, string>> {
  if (paths.length === 0) return {};
  const out = await exec.runAsync([...inNetns(netns), '-n', '--', ...paths], { allowFailure: true });
  const values = out.stdout.split('\n');
  if (out.status !== 0 || values.length < paths.length) {
    throw new CniError(ErrorCode.invalidConfig, 'cannot read sysctl', out.stderr.trim() || `exit ${out.status}`);
  }
  return Object.fromEntries(paths.map((p, i) => [p, values[i]!]));
}

/** Writes sysctls in the namespace at `netns`: one spawn; `-q` keeps stdout quiet. */
export async function writeSysctls(exec: Exec, netns: string, values: readonly (readonly [string, string])[]): Promise<void> {
  if (values.length === 0) return;
  const out = await exec.runAsync([...inNetns(netns), '-q', '-w', '--', ...values.map(([p, v]) => `${p}=${v}`)], { allowFailure: true });
  if (out.status !== 0) throw new CniError(ErrorCode.internal, 'cannot set sysctl', out.stderr.trim() || `exit ${out.status}`);
}
