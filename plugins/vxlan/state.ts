import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { digest } from '../../lib/digest.ts';
import { writeFileAtomic } from '../../lib/store/atomic-file.ts';
import { lockFile } from '../../lib/store/file-lock.ts';
import { parseSubnet } from '../../lib/net/ip.ts';
import type { NodeSubnets } from './conf.ts';
import type { Peer } from './peers.ts';

/** What a node remembers between invocations: its subnet (and etcd lease), MAC and underlay address. */
export interface NodeState {
  /** IPv4 and IPv6 pod subnets, each when its cluster network is configured (at least one). */
  subnet?: string;
  subnet6?: string;
  ip: string;
  mac: string;
  leaseId?: string;
}

/**
 * The peer entries the last reconcile left on the device, and on which device (its ifindex: a device
 * re-created behind our back holds none of them). Present only while it is true: it is removed
 * before any batch that changes peer entries and written after the batch succeeded, so a crash
 * in between leaves no record, and the next reconcile reads the kernel.
 */
export interface AppliedRecord {
  ifindex: number;
  /** `peersDigest` of the inputs the peers came from (an ADD with the same inputs skips its reconcile). */
  digest: string | undefined;
  peers: Peer[];
}

const stateFile = (stateDir: string, device: string) => join(stateDir, `${device}.json`);
const appliedFile = (stateDir: string, device: string) => join(stateDir, `${device}.applied`);

export function readState(stateDir: string, device: string): NodeState | undefined {
  try {
    const v = JSON.parse(readFileSync(stateFile(stateDir, device), 'utf8')) as Partial<NodeState>;
    const subnets = { ...(typeof v.subnet === 'string' ? { subnet: v.subnet } : {}), ...(typeof v.subnet6 === 'string' ? { subnet6: v.subnet6 } : {}) };
    if ((!subnets.subnet && !subnets.subnet6) || typeof v.ip !== 'string' || typeof v.mac !== 'string') return undefined;
    return { ...subnets, ip: v.ip, mac: v.mac, ...(typeof v.leaseId === 'string' ? { leaseId: v.leaseId } : {}) };
  } catch {
    return undefined;
  }
}

/** The state's subnets, each only when the config has its family's network (a family dropped from the config is forgotten). */
export function stateSubnets(state: NodeState | undefined, families: { network: unknown; network6: unknown }): NodeSubnets | undefined {
  if (!state) return undefined;
  const v4 = families.network && state.subnet !== undefined ? parseSubnet(state.subnet) : undefined;
  const v6 = families.network6 && state.subnet6 !== undefined ? parseSubnet(state.subnet6) : undefined;
  return (!families.network || v4) && (!families.network6 || v6) ? { v4, v6 } : undefined;
}

export function writeState(stateDir: string, device: string, state: NodeState): void {
  writeFileAtomic(stateFile(stateDir, device), JSON.stringify(state) + '\n');
}

/** The state file, the applied record and the device's lock (teardown: the device is gone). */
export function removeState(stateDir: string, device: string): void {
  rmSync(stateFile(stateDir, device), { force: true });
  forgetApplied(stateDir, device);
  rmSync(lockFile(stateDir, device), { force: true });
}

/** A damaged peers line must not pass for a shorter or different list: the header carries its hash. */
const checksum = (peersLine: string) => digest('sha256', peersLine).toString('base64url');

/**
 * Two lines: a header `{ifindex, digest, sum}` and the peers as JSON, which `JSON.parse` turns back
 * into peers natively (no per-peer code: `sync` reads 1,000 of them). An ADD needs only the header.
 */
export function formatApplied(record: AppliedRecord): string {
  const peersLine = JSON.stringify(record.peers);
  const header = JSON.stringify({ ifindex: record.ifindex, ...(record.digest ? { digest: record.digest } : {}), sum: checksum(peersLine) });
  return `${header}\n${peersLine}\n`;
}

/** The record in `text`, or undefined when it is damaged in any way (the caller then reads the kernel). */
export function parseApplied(text: string, options: { peers: boolean }): AppliedRecord | undefined {
  const nl = text.indexOf('\n');
  if (nl < 0) return undefined;
  try {
    const header = JSON.parse(text.slice(0, nl)) as { ifindex?: unknown; digest?: unknown; sum?: unknown };
    if (!Number.isInteger(header.ifindex) || (header.digest !== undefined && typeof header.digest !== 'string')) return undefined;
    const base = { ifindex: header.ifindex as number, digest: header.digest as string | undefined };
    if (!options.peers) return { ...base, peers: [] };
    const peersLine = text.slice(nl + 1).trimEnd();
    if (header.sum !== checksum(peersLine)) return undefined;
    const peers = JSON.parse(peersLine) as unknown;
    return Array.isArray(peers) ? { ...base, peers: peers as Peer[] } : undefined;
  } catch {
    return undefined;
  }
}

export function readApplied(stateDir: string, device: string, options: { peers: boolean }): AppliedRecord | undefined {
  let text: string;
  try {
    text = readFileSync(appliedFile(stateDir, device), 'utf8');
  } catch {
    return undefined;
  }
  return parseApplied(text, options);
}

export function writeApplied(stateDir: string, device: string, record: AppliedRecord): void {
  writeFileAtomic(appliedFile(stateDir, device), formatApplied(record));
}

/**
 * Whether `found` (read back, header only) is the record `ours` was written as: the same device and
 * the same inputs digest (the same inputs give the same peers). Anything else means another writer
 * changed the entries since.
 */
export function sameRecord(found: Pick<AppliedRecord, 'ifindex' | 'digest'> | undefined, ours: Pick<AppliedRecord, 'ifindex' | 'digest'>): boolean {
  return found !== undefined && ours.digest !== undefined && found.ifindex === ours.ifindex && found.digest === ours.digest;
}

export function forgetApplied(stateDir: string, device: string): void {
  rmSync(appliedFile(stateDir, device), { force: true });
}
