import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a node remembers between invocations: its subnet (and etcd lease), MAC and underlay address. */
export interface NodeState {
  subnet: string;
  ip: string;
  mac: string;
  leaseId?: string;
  /** `peersDigest` of the last reconcile that applied cleanly. */
  digest?: string;
}

const file = (stateDir: string, device: string) => join(stateDir, `${device}.json`);

export function readState(stateDir: string, device: string): NodeState | undefined {
  try {
    const v = JSON.parse(readFileSync(file(stateDir, device), 'utf8')) as Partial<NodeState>;
    if (typeof v.subnet !== 'string' || typeof v.ip !== 'string' || typeof v.mac !== 'string') return undefined;
    return { subnet: v.subnet, ip: v.ip, mac: v.mac, ...(typeof v.leaseId === 'string' ? { leaseId: v.leaseId } : {}), ...(typeof v.digest === 'string' ? { digest: v.digest } : {}) };
  } catch {
    return undefined;
  }
}

/** Written atomically (temp + rename), readable by root only. */
export function writeState(stateDir: string, device: string, state: NodeState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const target = file(stateDir, device);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
  renameSync(tmp, target);
}

export function removeState(stateDir: string, device: string): void {
  rmSync(file(stateDir, device), { force: true });
}
