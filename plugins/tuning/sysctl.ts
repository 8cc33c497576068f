import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { Exec } from '../../lib/exec.ts';
import { ProcessError } from '../../lib/exec.ts';
import { readSysctlsIn, writeSysctlsIn } from '../../lib/ip/sysctl.ts';

/** What `sysctl` said, for an error's details. */
const said = (err: unknown) => (err instanceof ProcessError ? err.stderr.trim() || `exit ${err.status}` : (err as Error).message);

/** Reads sysctls (paths relative to /proc/sys) in the namespace at `netns`: one spawn. */
export async function readSysctls(exec: Exec, netns: string, paths: readonly string[]): Promise<Record<string, string>> {
  return readSysctlsIn(exec, netns, paths).catch((err: unknown) => {
    throw new CniError(ErrorCode.invalidConfig, 'cannot read sysctl', said(err));
  });
}

/** Writes sysctls in the namespace at `netns`: one spawn. */
export async function writeSysctls(exec: Exec, netns: string, values: readonly (readonly [string, string])[]): Promise<void> {
  await writeSysctlsIn(exec, netns, values.map(([path, value]) => ({ path, value }))).catch((err: unknown) => {
    throw new CniError(ErrorCode.internal, 'cannot set sysctl', said(err));
  });
}
