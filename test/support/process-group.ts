import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface GroupRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Processes of the plugin's group still there when it had exited ("pid comm state"). */
  leftBehind: string[];
}

/** Members of process group `pgid` other than zombies, as "pid comm state". */
export function groupMembers(pgid: number): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(')');
    const [state, , pgrp] = stat.slice(close + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') found.push(`${entry} ${stat.slice(stat.indexOf('(') + 1, close)} ${state}`);
  }
  return found;
}

export interface GroupOptions {
  env: Record<string, string>;
  input: string | Buffer;
  /** SIGKILL the plugin (only it, as a runtime's timeout does) when this settles, if still running. */
  kill?: Promise<unknown>;
  /**
   * How long processes of the group may take to die after the plugin was killed (the kernel sends
   * the parent-death signal as it exits; the child still has to be scheduled to die). 0 for a plugin
   * that exits by itself: by then it must have waited for every child.
   */
  graceMs?: number;
}

/**
 * Runs `argv` as the leader of a new session and process group (setsid execs it in place, so its
 * pid is the group id) and reports what of the group outlived it. Whatever is found is killed
 * afterwards, so a failing test leaves nothing either.
 */
export function runInGroup(argv: string[], options: GroupOptions): Promise<GroupRun> {
  return new Promise((resolve) => {
    const child = spawn('setsid', argv, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const pgid = child.pid!;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
    void options.kill?.then(() => exited || child.kill('SIGKILL'));
    let leftBehind: string[] = [];
    let exited: { status: number | null; signal: NodeJS.Signals | null } | undefined;
    child.on('exit', async (status, signal) => {
      leftBehind = groupMembers(pgid);
      for (let waited = 0; leftBehind.length > 0 && waited < (options.graceMs ?? 0); waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
        leftBehind = groupMembers(pgid);
      }
      for (const p of leftBehind) tryKill(Number(p.split(' ')[0]));
      exited = { status, signal };
      if (closed) resolve({ ...exited, stdout, stderr, leftBehind });
    });
    let closed = false;
    child.on('close', () => {
      closed = true;
      if (exited) resolve({ ...exited, stdout, stderr, leftBehind });
    });
  });
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
