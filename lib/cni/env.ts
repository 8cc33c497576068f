import { CniError, ErrorCode } from './errors.ts';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  cniArgs: string;
  path: string[];
}

type Var = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

/** Which variables each verb requires (spec 1.1.0, section 2). */
const REQUIRED: Record<Command, readonly Var[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_CONTAINER_ID = 255; // it names files in IPAM stores
const MAX_PATH = 4096;
const MAX_CNI_ARGS = 64 * 1024;

export function validIfName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 15) return 'is longer than 15 characters';
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or whitespace';
  if (/[\x00-\x1f\x7f]/.test(name)) return 'contains a control character';
  return undefined;
}

function validContainerId(id: string): string | undefined {
  if (id.length > MAX_CONTAINER_ID) return `is longer than ${MAX_CONTAINER_ID} characters`;
  if (!CONTAINER_ID.test(id)) return 'must start with a letter or digit and contain only letters, digits, "_", "." and "-"';
  return undefined;
}

function validNetns(path: string): string | undefined {
  if (path.length > MAX_PATH) return `is longer than ${MAX_PATH} characters`;
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (/[\x00-\x1f\x7f]/.test(path)) return 'contains a control character';
  return undefined;
}

/**
 * Reads and validates the CNI_* variables for a verb. Missing and invalid variables are reported
 * together with code 4, each by name.
 */
export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const raw = env.CNI_COMMAND ?? '';
  if (raw === '') throw new CniError(ErrorCode.invalidEnvironment, 'required env variables [CNI_COMMAND] missing');
  const command = (COMMANDS as readonly string[]).includes(raw) ? (raw as Command) : undefined;
  if (!command) throw new CniError(ErrorCode.invalidEnvironment, `unknown CNI_COMMAND: ${JSON.stringify(raw.slice(0, 64))}`, `CNI_COMMAND must be one of ${COMMANDS.join(', ')}`);
  if (command === 'VERSION') return { command, containerId: '', netns: '', ifname: '', cniArgs: '', path: [] };

  const missing = REQUIRED[command].filter((v) => !env[v]);
  if (missing.length > 0) throw new CniError(ErrorCode.invalidEnvironment, `required env variables [${missing.join(',')}] missing`);

  const invalid: string[] = [];
  const check = (name: Var | 'CNI_ARGS', value: string, validate: (v: string) => string | undefined) => {
    const why = value === '' ? undefined : validate(value);
    if (why) invalid.push(`${name} ${why}`);
  };
  const containerId = env.CNI_CONTAINERID ?? '';
  const netns = env.CNI_NETNS ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  const cniArgs = env.CNI_ARGS ?? '';
  const pathVar = env.CNI_PATH ?? '';
  check('CNI_CONTAINERID', containerId, validContainerId);
  check('CNI_NETNS', netns, validNetns);
  check('CNI_IFNAME', ifname, validIfName);
  check('CNI_ARGS', cniArgs, (v) => (v.length > MAX_CNI_ARGS ? `is longer than ${MAX_CNI_ARGS} characters` : undefined));
  check('CNI_PATH', pathVar, (v) => (v.length > MAX_PATH * 4 ? 'is too long' : undefined));
  if (invalid.length > 0) {
    throw new CniError(ErrorCode.invalidEnvironment, `invalid env variables [${invalid.map((s) => s.split(' ')[0]).join(',')}]`, invalid.join('; '));
  }
  const path = pathVar.split(':').filter((p) => p.startsWith('/'));
  return { command, containerId, netns, ifname, cniArgs, path };
}
