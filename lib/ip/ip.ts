import { realpathSync } from 'node:fs';
import type { Exec, ProcessOutput } from '../exec.ts';
import { ProcessError } from '../exec.ts';
import { nsenterNet, refuseOwnNetns } from './netns-guard.ts';

/** A namespace that `ip netns` manages: a file in /run/netns (podman, CRI, `ip netns add`). */
const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]{0,254})$/;
let varRunIsRun: boolean | undefined;

/**
 * `ip` in the host namespace, or inside the namespace at `netns` (a path: runtimes pass
 * /run/netns/NAME or /proc/PID/ns/net). A named one is entered with `ip -n NAME`: one exec where
 * `nsenter --net=PATH ip` takes two (~2 ms less per call, measured). Our own namespace is refused.
 */
export function ipArgv(netns?: string): string[] {
  if (!netns) return ['ip'];
  const named = NAMED_NETNS.exec(netns);
  if (named && (netns.startsWith('/run/') || (varRunIsRun ??= realpathSync('/var/run') === '/run'))) {
    refuseOwnNetns(netns);
    return ['ip', '-n', named[1]!];
  }
  return [...nsenterNet(netns), 'ip'];
}

const UNSAFE_TOKEN = /[\s"'\\#;\x00-\x1f\x7f]/;

/**
 * One `ip -batch` line from tokens. Every token is checked here, so no input can add a line or an
 * argument: a name with a newline or a space is refused, not quoted.
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

/** A batch that stopped at a failing line; lines before it were applied. */
export class IpBatchError extends Error {
  /** 1-based index of the failing line; the lines before it took effect. */
  readonly failedLine: number;
  readonly command: string;
  readonly stderr: string;

  constructor(lines: readonly string[], out: ProcessOutput) {
    const m = /Command failed -:(\d+)/.exec(out.stderr);
    const failedLine = m ? Number(m[1]) : 1;
    const command = lines[failedLine - 1] ?? '';
    const reason = out.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join('; ');
    super(`ip: "${command}": ${reason || `exit ${out.status}`}`);
    this.name = 'IpBatchError';
    this.failedLine = failedLine;
    this.command = command;
    this.stderr = out.stderr;
  }
}

export interface BatchOptions {
  netns?: string;
  /** Add -json: show commands in the batch print JSON arrays. */
  json?: boolean;
  /** Keep going past failing lines (teardown, where "already gone" is fine). */
  force?: boolean;
}

/** Runs many ip commands in one spawn; returns stdout (the JSON of any show lines). */
export async function ipBatch(exec: Exec, lines: readonly string[], options: BatchOptions = {}): Promise<string> {
  if (lines.length === 0) return '';
  const argv = [...ipArgv(options.netns), ...(options.force ? ['-force'] : []), ...(options.json ? ['-json'] : []), '-batch', '-'];
  const out = await exec.runAsync(argv, { input: lines.join('\n') + '\n', allowFailure: true });
  if (out.status !== 0 && !options.force) {
    if (/Command failed -:\d+/.test(out.stderr)) throw new IpBatchError(lines, out);
    throw new ProcessError(out);
  }
  return out.stdout;
}

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
