import type { NetConf } from './conf.ts';
import type { Command } from './env.ts';
import type { Exec } from '../exec.ts';
import type { Logger } from './log.ts';
import type { GcAttachment } from './gc.ts';
import type { Result } from './result.ts';
import type { Undo } from './undo.ts';

export type DelegateCommand = Exclude<Command, 'VERSION'>;

/** Everything a plugin verb may use. Plugins never read process.env, stdin or stdout. */
export interface PluginContext {
  readonly command: DelegateCommand;
  readonly containerId: string;
  /** Namespace path; '' on a DEL whose runtime no longer has one, and on GC/STATUS. */
  readonly netns: string;
  readonly ifname: string;
  /** The config as received, with unknown keys: parse it with the plugin's own schema. */
  readonly conf: NetConf;
  readonly cniVersion: string;
  /** prevResult of any spec version, converted to the newest shape. */
  readonly prevResult: Result | undefined;
  /**
   * GC's `cni.dev/valid-attachments` (or `cni.dev/attachments`): code 7 when the config has none.
   * The core checks it before a plugin's GC runs.
   */
  validAttachments(): readonly GcAttachment[];
  /** CNI_ARGS as key → value, validated against the keys this plugin knows (code 4 otherwise). */
  cniArgs(known: readonly string[]): Record<string, string>;
  readonly exec: Exec;
  readonly log: Logger;
  /** A compensation stack for this verb: `await using undo = ctx.undo()`. */
  undo(): Undo;
  /**
   * Runs a delegated plugin (IPAM) with the same environment: in-process when CNI_PATH resolves
   * it to this very executable, by exec otherwise. `conf` defaults to the config we received.
   */
  delegate(type: string, command: DelegateCommand, conf?: Record<string, unknown>): Promise<Result | undefined>;
  /** The same invocation with another config: to call a plugin of ours in-process (vxlan → bridge). */
  withConf(conf: Record<string, unknown>, prevResult?: Result): PluginContext;
}

export interface Plugin {
  readonly name: string;
  readonly summary: string;
  /**
   * Refuses what ADD refuses in a config alone (CniError 7 naming the key), leaving out what only
   * the runtime supplies: CNI_ARGS, prevResult, the interface name. ADD runs the same resolver first,
   * so `tscni doctor` (which calls this) and ADD cannot disagree about a config.
   */
  validate(conf: Record<string, unknown>): void;
  /**
   * The config's `ipam` is only a part of an IPAM config the plugin writes itself (vxlan), not one
   * it hands to the IPAM plugin as it is: a checker must not validate it as that plugin's config.
   */
  readonly buildsOwnIpam?: true;
  add(ctx: PluginContext): Promise<Result>;
  del(ctx: PluginContext): Promise<void>;
  check(ctx: PluginContext): Promise<void>;
  gc?(ctx: PluginContext): Promise<void>;
  status?(ctx: PluginContext): Promise<void>;
}

export const definePlugin = (plugin: Plugin): Plugin => plugin;

/** Finds our own implementation of a plugin type, for in-process delegation. */
export type PluginResolver = (type: string) => Promise<Plugin | undefined>;
