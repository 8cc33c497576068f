import { resolve } from 'node:path';
import { digest } from '../lib/digest.ts';
import { splitCniArgs } from '../lib/cni/cni-args.ts';
import { validIfName } from '../lib/cni/env.ts';
import { isStoreName } from '../lib/store/reservations.ts';

/** What libcni's RuntimeConf carries besides the network config. */
export interface RuntimeConf {
  containerId: string;
  /** '' when there is no namespace (DEL after the container is gone, GC, STATUS). */
  netns: string;
  ifname: string;
  args: [string, string][];
  capabilityArgs?: Record<string, unknown>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** libcni's rule for container IDs and network names; they also name cache and IPAM files. */
export function validName(what: string, value: string): string {
  if (value === '') throw new UsageError(`missing ${what}`);
  if (!isStoreName(value)) throw new UsageError(`invalid ${what} ${JSON.stringify(value.slice(0, 64))}: use letters, digits, "_", "." and "-", starting with a letter or digit`);
  return value;
}

/** cnitool's default container ID: "cnitool-" + the first 10 bytes of sha512(netns path), in hex. */
export const containerIdForNetns = (netnsPath: string) =>
  'cnitool-' + digest('sha512', netnsPath).subarray(0, 10).toString('hex');

/** CNI_ARGS as cnitool reads it: `K=V;K2=V2`, every pair with a non-empty key and value. */
export const parseCnitoolArgs = (text: string): [string, string][] =>
  splitCniArgs(text, { nonEmpty: true, invalid: (pair) => new UsageError(`invalid CNI_ARGS pair ${JSON.stringify(pair)}`) });

export function parseCapArgs(text: string): Record<string, unknown> | undefined {
  if (text === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`parsing CAP_ARGS: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError('parsing CAP_ARGS: expected a JSON object');
  return v as Record<string, unknown>;
}

export interface RuntimeInputs {
  netns: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  capArgs: string | undefined;
  /** Whether the verb needs a container (ADD, CHECK, DEL) at all. */
  needsContainer: boolean;
}

/** Builds the runtime config from the command line and env, exactly as cnitool would. */
export function buildRuntimeConf({ netns, env, capArgs, needsContainer }: RuntimeInputs): RuntimeConf {
  const netnsPath = netns ? resolve(netns) : '';
  const ifname = env.CNI_IFNAME ?? 'eth0';
  const args = parseCnitoolArgs(env.CNI_ARGS ?? '');
  const capabilityArgs = parseCapArgs(capArgs ?? env.CAP_ARGS ?? '');
  if (!needsContainer) return { containerId: '', netns: '', ifname: '', args, capabilityArgs };
  const explicit = env.CNI_CONTAINERID ?? '';
  if (!explicit && !netnsPath) throw new UsageError('need a netns path or CNI_CONTAINERID to name the container');
  const containerId = validName('container ID', explicit || containerIdForNetns(netnsPath));
  const badIf = validIfName(ifname);
  if (badIf) throw new UsageError(`invalid CNI_IFNAME ${JSON.stringify(ifname)}: ${badIf}`);
  return { containerId, netns: netnsPath, ifname, args, capabilityArgs };
}
