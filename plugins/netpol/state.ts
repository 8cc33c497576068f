import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/store/atomic-file.ts';
import type { MembershipIndex } from '../../lib/netpol/membership.ts';
import type { ContainerPort, Labels } from '../../lib/netpol/objects.ts';
import type { Ruleset } from '../../lib/netpol/ruleset.ts';

/**
 * The plugin's files in its stateDir (root only, each written atomically):
 *   applied.json             the Ruleset the kernel holds (sync writes it; ADD, DEL and GC patch its elements)
 *   index.json               what ADD needs without the source: the MembershipIndex, every Pod object's
 *                            labels and ports, and the source's stamp when it was read
 *   pods/<cid>_<ifname>.json one Registration per local attachment
 *   netpol.lock              one writer at a time (lib/store/file-lock.ts)
 * A damaged or missing file reads as undefined: sync rebuilds it from the source and the kernel.
 */
export interface Registration {
  network: string;
  containerId: string;
  ifname: string;
  namespace: string;
  /** K8S_POD_NAME; absent for a runtime without Kubernetes (labels then only from args). */
  name?: string;
  /** Addresses with their prefix length, from prevResult (`10.1.0.5/24`). */
  ips: string[];
  /** From args.cni.labels at ADD; undefined when none were given. */
  argLabels?: Labels;
}

export interface IndexedPod {
  labels: Labels;
  ports: readonly ContainerPort[];
  hostNetwork: boolean;
}

export interface NetpolIndex {
  version: 1;
  /** sourceStamp() of the objects when sync read them: a different stamp now means the index is stale. */
  stamp: string;
  membership: MembershipIndex;
  /** Pod objects by `namespace/name`. */
  pods: Record<string, IndexedPod>;
}

export const LOCK_NAME = 'netpol';
const appliedFile = (dir: string) => join(dir, 'applied.json');
const indexFile = (dir: string) => join(dir, 'index.json');
const podsDir = (dir: string) => join(dir, 'pods');
const registrationFile = (dir: string, containerId: string, ifname: string) => join(podsDir(dir), `${containerId}_${ifname}.json`);

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readApplied(dir: string): Ruleset | undefined {
  const rs = readJson<Ruleset>(appliedFile(dir));
  return rs && Array.isArray(rs.sets) && Array.isArray(rs.chains) ? rs : undefined;
}

export const writeApplied = (dir: string, rs: Ruleset): void => writeFileAtomic(appliedFile(dir), JSON.stringify(rs));
export const forgetApplied = (dir: string): void => rmSync(appliedFile(dir), { force: true });

export function readIndex(dir: string): NetpolIndex | undefined {
  const index = readJson<NetpolIndex>(indexFile(dir));
  return index?.version === 1 && typeof index.stamp === 'string' && index.membership && index.pods ? index : undefined;
}

export const writeIndex = (dir: string, index: NetpolIndex): void => writeFileAtomic(indexFile(dir), JSON.stringify(index));

export const readRegistration = (dir: string, containerId: string, ifname: string): Registration | undefined => readJson<Registration>(registrationFile(dir, containerId, ifname));
export const writeRegistration = (dir: string, r: Registration): void => writeFileAtomic(registrationFile(dir, r.containerId, r.ifname), JSON.stringify(r));
export const removeRegistration = (dir: string, containerId: string, ifname: string): void => rmSync(registrationFile(dir, containerId, ifname), { force: true });

/** Every registration of every network (sync judges all local pods; GC filters by network). */
export function listRegistrations(dir: string): Registration[] {
  let names: string[];
  try {
    names = readdirSync(podsDir(dir));
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    if (!n.endsWith('.json')) return [];
    const r = readJson<Registration>(join(podsDir(dir), n));
    return r && typeof r.containerId === 'string' && typeof r.namespace === 'string' && Array.isArray(r.ips) ? [r] : [];
  });
}

const MANIFEST = /\.(ya?ml|json)$/;

/**
 * A cheap fingerprint of the objects directory (names, sizes, mtimes of its manifests; no parse):
 * ADD compares it with the index's to know whether the index is fresh. Unreadable: 'unreadable'.
 */
export function sourceStamp(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => MANIFEST.test(n)).sort();
  } catch {
    return 'unreadable';
  }
  let newest = 0;
  let bytes = 0;
  try {
    newest = statSync(dir).mtimeMs; // renames and removals
  } catch {
    return 'unreadable';
  }
  for (const n of names) {
    try {
      const st = statSync(join(dir, n));
      newest = Math.max(newest, st.mtimeMs);
      bytes += st.size;
    } catch {
      // removed meanwhile: the count tells
    }
  }
  return `${names.length}:${bytes}:${newest}`;
}

export const isManifest = (name: string): boolean => MANIFEST.test(name);
