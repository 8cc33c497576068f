import { realpathSync } from 'node:fs';
import type { Exec, ProcessOutput } from '../exec.ts';
import { ProcessError } from '../exec.ts';
import { nsenterNet, refuseOwnNetns } from './netns-guard.ts';

/** A namespace that `ip netns` manages: a file in /run/netns (podman, CRI, `ip netns add`). */
const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]{0,254})$/;
let varRunIsRun: boolean | undefined;

/** The iproute2 tools that take `-batch -`, `-json`, `-force` and `-n NAME` alike. */
export type Iproute2Tool = 'ip' | 'bridge' | 'tc';

/**
 * `ip` in the host namespace, or inside the namespace at `netns` (a path: runtimes pass
 * /run/netns/NAME or /proc/PID/ns/net). A named one is entered with `ip -n NAME`: one exec where
 * `nsenter --net=PATH ip` takes two (~2 ms less per call, measured). Our own namespace is refused.
 */
export function ipArgv(netns?: string): string[] {
  return toolArgv('ip', netns);
}

/** ipArgv for any iproute2 tool: `bridge` and `tc` take `-n NAME` as `ip` does. */
export function toolArgv(tool: Iproute2Tool, netns?: string): string[] {
  if (!netns) return [tool];
  const named = NAMED_NETNS.exec(netns);
  if (named && (netns.startsWith('/run/') || (varRunIsRun ??= realpathSync('/var/run') === '/run'))) {
    refuseOwnNetns(netns);
    return [tool, '-n', named[1]!];
  }
  return [...nsenterNet(netns), tool];
}

const UNSAFE_TOKEN = /[\s"'\\#;\x00-\x1f\x7f]/;

/**
 * One `-batch` line of an iproute2 tool (ip, bridge, tc) from tokens. Every token is checked here,
 * so no input can add a line or an argument: a name with a newline or a space is refused, not quoted.
 */
export function batchLine(...tokens: (string | number)[]): string {
  for (const t of tokens) {
    const s = String(t);
    if (s === '' || UNSAFE_TOKEN.test(s)) throw new Error(`refusing unsafe token ${JSON.stringify(s)} in ip batch`);
  }
  return tokens.join(' ');
}

/** Whether an ip failure (an error or its stderr) means the link is not there: "already gone" for teardown. */
export function linkGone(failure: unknown): boolean {
  const text = typeof failure === 'string' ? failure : failure instanceof IpBatchError || failure instanceof ProcessError ? failure.stderr : failure instanceof Error ? failure.message : '';
  return /Cannot find device|does not exist/.test(text);
}

/** Whether a failure means the namespace itself could not be entered (gone, or not a namespace). */
export function namespaceGone(err: unknown): boolean {
  return err instanceof ProcessError && /^nsenter: |Cannot open network namespace/m.test(err.stderr);
}

/** One failing line of a batch, as the tool reported it on stderr. */
export interface BatchFailure {
  /** 1-based index into the lines given. */
  line: number;
  command: string;
  /** What the tool said before `Command failed -:N`, joined with "; ". */
  reason: string;
}

/**
 * The failing lines of an iproute2 batch, from its stderr: each failure prints its messages, then
 * `Command failed -:N` (with `-force`, one such block per failing line).
 */
export function batchFailures(lines: readonly string[], stderr: string): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let said: string[] = [];
  for (const text of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(text);
    if (!m) {
      if (text) said.push(text);
      continue;
    }
    const line = Number(m[1]);
    failures.push({ line, command: lines[line - 1] ?? '', reason: said.join('; ') });
    said = [];
  }
  return failures;
}

/** A batch of an iproute2 tool that stopped at a failing line; lines before it were applied. */
export class IpBatchError extends Error {
  readonly tool: Iproute2Tool;
  /** 1-based index of the failing line; the lines before it took effect. */
  readonly failedLine: number;
  readonly command: string;
  readonly stderr: string;

  constructor(lines: readonly string[], out: ProcessOutput, tool: Iproute2Tool = 'ip', failure = batchFailures(lines, out.stderr)[0]) {
    const failedLine = failure?.line ?? 1;
    const command = lines[failedLine - 1] ?? '';
    super(`${tool}: "${command}": ${failure?.reason || `exit ${out.status}`}`);
    this.name = 'IpBatchError';
    this.tool = tool;
    this.failedLine = failedLine;
    this.command = command;
    this.stderr = out.stderr;
  }
}

/** The typed error of a failed batch: the failing line when the tool named one, else the process. */
export function batchError(tool: Iproute2Tool, lines: readonly string[], out: ProcessOutput): Error {
  const [failure] = batchFailures(lines, out.stderr);
  return failure ? new IpBatchError(lines, out, tool, failure) : new ProcessError(out);
}

export interface BatchOptions {
  netns?: string;
  /** Add -json: show commands in the batch print JSON arrays. */
  json?: boolean;
  /** Keep going past failing lines (teardown, where "already gone" is fine). */
  force?: boolean;
}

/**
 * Runs many lines of an iproute2 tool in one spawn (`TOOL [-force] [-json] -batch -`, in `netns`
 * or here); returns stdout (the JSON of any show lines). Without `force` a failure throws batchError.
 */
export async function toolBatch(exec: Exec, tool: Iproute2Tool, lines: readonly string[], options: BatchOptions = {}): Promise<string> {
  if (lines.length === 0) return '';
  const argv = [...toolArgv(tool, options.netns), ...(options.force ? ['-force'] : []), ...(options.json ? ['-json'] : []), '-batch', '-'];
  const out = await exec.runAsync(argv, { input: lines.join('\n') + '\n', allowFailure: true });
  if (out.status !== 0 && !options.force) throw batchError(tool, lines, out);
  return out.stdout;
}

/** Runs many ip commands in one spawn; returns stdout (the JSON of any show lines). */
export const ipBatch = (exec: Exec, lines: readonly string[], options?: BatchOptions): Promise<string> => toolBatch(exec, 'ip', lines, options);

/** `bridge -batch` (fdb, vlan): one spawn. */
export const bridgeBatch = (exec: Exec, lines: readonly string[], options?: BatchOptions): Promise<string> => toolBatch(exec, 'bridge', lines, options);

/** `tc -batch` (qdiscs, filters): one spawn. */
export const tcBatch = (exec: Exec, lines: readonly string[], options?: BatchOptions): Promise<string> => toolBatch(exec, 'tc', lines, options);

/** Reads kernel state with `ip -json ARGS` (read-only). */
export async function ipJson<T>(exec: Exec, args: readonly string[], netns?: string): Promise<T> {
  const out = await exec.runAsync([...ipArgv(netns), '-json', ...args]);
  return parseIpJson<T>(out.stdout);
}

/** `ip -json -batch` prints one JSON array per show line, back to back; this splits them. */
export function parseIpJson<T>(stdout: string): T {
  const text = stdout.trim();
  if (text === '') return [] as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return JSON.parse(`[${text.replace(/\]\s*\[/g, '],[')}]`) as T;
  }
}
