import { knownCniArgs } from './cni-args.ts';
import type { NetConf } from './conf.ts';
import type { CniEnv } from './env.ts';
import type { Exec } from '../exec.ts';
import type { Logger } from './log.ts';
import type { DelegateCommand, Plugin, PluginContext, PluginResolver } from './plugin.ts';
import type { Result } from './result.ts';
import { Undo } from './undo.ts';
import { execDelegate, fileIdentity, findInPath } from './delegate.ts';
import { toCniError } from './errors.ts';
import { parseValidAttachments } from './gc.ts';

/** What the process gives a verb: kept by the core so plugins need not see env or stdin. */
export interface Invocation {
  env: CniEnv;
  /** The whole environment, passed on unchanged to delegated plugins. */
  rawEnv: Readonly<Record<string, string | undefined>>;
  conf: NetConf;
  cniVersion: string;
  prevResult: Result | undefined;
  exec: Exec;
  log: Logger;
  resolve: PluginResolver;
  /** Identity (dev:ino) of this executable, to recognise ourselves in CNI_PATH. */
  self: string | undefined;
  /** TSCNI_FAULT: a step label at which undo stacks fail, for rollback tests. */
  fault?: string;
}

export function createContext(inv: Invocation): PluginContext {
  return {
    command: inv.env.command as DelegateCommand,
    containerId: inv.env.containerId,
    netns: inv.env.netns,
    ifname: inv.env.ifname,
    conf: inv.conf,
    cniVersion: inv.cniVersion,
    prevResult: inv.prevResult,
    validAttachments: () => parseValidAttachments(inv.conf),
    cniArgs: (known) => knownCniArgs(inv.env.cniArgs, known),
    exec: inv.exec,
    log: inv.log,
    undo: () => new Undo(inv.log, inv.fault),
    delegate: (type, command, conf) => delegate(inv, type, command, conf),
    withConf: (conf, prevResult) => createContext({ ...inv, conf: { ...conf, name: inv.conf.name }, prevResult }),
  };
}

/**
 * Runs a delegated plugin as the spec's section 4 says: same environment, the full config on stdin,
 * its stderr passed through; a failed ADD is followed by a DEL of the delegate before failing.
 */
export async function delegate(inv: Invocation, type: string, command: DelegateCommand, conf?: Record<string, unknown>): Promise<Result | undefined> {
  const file = findInPath(type, inv.env.path);
  const body = conf ?? inv.conf;
  const ours = inv.self !== undefined && fileIdentity(file) === inv.self ? await inv.resolve(type) : undefined;
  const call = async (cmd: DelegateCommand): Promise<Result | undefined> => {
    if (ours) {
      inv.log.debug('delegate in-process', { type, command: cmd });
      const ctx = createContext({ ...inv, env: { ...inv.env, command: cmd }, conf: { ...body, name: inv.conf.name } });
      return runVerb(ours, ctx);
    }
    inv.log.debug('delegate exec', { type, command: cmd, file });
    return execDelegate(inv, file, cmd, body);
  };
  try {
    return await call(command);
  } catch (err) {
    if (command === 'ADD') {
      await call('DEL').catch((e) => inv.log.warn('delegate DEL after failed ADD failed', { type, error: toCniError(e).message }));
    }
    throw err;
  }
}

export async function runVerb(plugin: Plugin, ctx: PluginContext): Promise<Result | undefined> {
  switch (ctx.command) {
    case 'ADD':
      return plugin.add(ctx);
    case 'DEL':
      return void (await plugin.del(ctx));
    case 'CHECK':
      return void (await plugin.check(ctx));
    case 'GC':
      ctx.validAttachments(); // refused here, before any plugin sweeps on a missing list
      return void (await plugin.gc?.(ctx));
    case 'STATUS':
      return void (await plugin.status?.(ctx));
  }
}
