import type { Exec, ProcessOutput, RunOptions } from '../../lib/exec.ts';
import { definePlugin, type Plugin, type PluginContext } from '../../lib/cni/plugin.ts';
import { runPlugin, type PluginIo } from '../../lib/cni/skel.ts';
import type { Result } from '../../lib/cni/result.ts';

/** One spawn the fake Exec was asked for. */
export interface Spawn {
  argv: readonly string[];
  options: RunOptions | undefined;
}

/** An Exec that records spawns and answers with `reply` (default: exit 0, empty output). */
export function fakeExec(reply: (argv: readonly string[], options?: RunOptions) => Partial<ProcessOutput> = () => ({})): Exec & { spawns: Spawn[] } {
  const spawns: Spawn[] = [];
  const answer = (argv: readonly string[], options?: RunOptions): ProcessOutput => {
    spawns.push({ argv, options });
    return { argv, status: 0, signal: null, stdout: '', stderr: '', ...reply(argv, options) };
  };
  return { spawns, runAsync: async (argv, options) => answer(argv, options) };
}

const LOOPBACK_LIKE: Result = {
  interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/run/netns/x' }],
  ips: [
    { interface: 0, address: '127.0.0.1/8' },
    { interface: 0, address: '::1/128' },
  ],
};

/** A plugin that records the context of each verb and returns `result` from ADD (or throws `fail`). */
export function fakePlugin(opts: { result?: Result; fail?: unknown; withGcStatus?: boolean } = {}): Plugin & { calls: { verb: string; ctx: PluginContext }[] } {
  const calls: { verb: string; ctx: PluginContext }[] = [];
  const verb = (name: string) => async (ctx: PluginContext) => {
    calls.push({ verb: name, ctx });
    if (opts.fail !== undefined) throw opts.fail;
  };
  const plugin = definePlugin({
    name: 'fake',
    summary: 'records calls',
    validate: () => {},
    async add(ctx) {
      await verb('ADD')(ctx);
      return structuredClone(opts.result ?? LOOPBACK_LIKE);
    },
    del: verb('DEL'),
    check: verb('CHECK'),
    ...(opts.withGcStatus === false ? {} : { gc: verb('GC'), status: verb('STATUS') }),
  });
  return Object.assign(plugin, { calls });
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as JSON, or undefined when it is empty. */
  json: any;
  exec: ReturnType<typeof fakeExec>;
}

export const ENV_ADD = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

/** Runs the protocol core in-process with injected env, stdin and outputs. */
export async function run(plugin: Plugin, env: Record<string, string | undefined>, stdin: unknown, extra: Partial<PluginIo> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const exec = fakeExec();
  const code = await runPlugin(plugin, {
    env,
    readStdin: () => (typeof stdin === 'string' ? stdin : JSON.stringify(stdin)),
    writeStdout: (t) => (stdout += t),
    writeStderr: (t) => (stderr += t),
    exec,
    resolve: async () => undefined,
    self: undefined,
    ...extra,
  });
  return { code, stdout, stderr, json: stdout ? JSON.parse(stdout) : undefined, exec };
}
