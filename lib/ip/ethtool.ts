import { validIfName } from '../cni/env.ts';
import type { Exec } from '../exec.ts';

/**
 * Turns `tx-checksum-ip-generic` off on a device (`ethtool -K`, one spawn): the workaround for the
 * VXLAN checksum bug of some kernels; it also disables segmentation offload. The name goes into argv
 * only as a valid interface name that cannot read as an option.
 */
export async function disableTxChecksum(exec: Exec, device: string): Promise<void> {
  const problem = validIfName(device) ?? (device.startsWith('-') ? 'starts with "-"' : undefined);
  if (problem) throw new Error(`refusing device name ${JSON.stringify(device)}: ${problem}`);
  await exec.runAsync(['ethtool', '-K', device, 'tx-checksum-ip-generic', 'off']);
}
