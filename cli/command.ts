import { toCniError } from '../lib/cni/errors.ts';
import { processExec, type Exec } from '../lib/exec.ts';
import { parseArgs, type FlagSpec, type ParsedArgs } from './args.ts';
import { UsageError } from './runtime-conf.ts';

export interface CliIo {
  writeStdout(text: string): void;
  writeStderr(text: string): void;
  /** Defaults to process.env; tests inject their own. */
  env?: Readonly<Record<string, string | undefined>>;
  exec?: Exec;
}

/** Stable exit codes scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** What a subcommand's run gets: its parsed arguments and the process around it. */
export interface CommandContext {
  name: string;
  args: ParsedArgs;
  json: boolean;
  env: Readonly<Record<string, string | undefined>>;
  exec: Exec;
  out(text: string): void;
  err(text: string): void;
}

export interface CliCommand {
  run(name: string, argv: readonly string[], io: CliIo): Promise<number>;
}

/**
 * A subcommand with the shared behaviour: `--help`, `--json`, usage errors (exit 2) and failures
 * (exit 1, `{code,msg,details}` on stdout with --json).
 */
export function defineCommand(spec: { flags: FlagSpec; help: (name: string) => string; run: (ctx: CommandContext) => Promise<number> }): CliCommand {
  return {
    async run(name, argv, io) {
      let json = argv.includes('--json');
      try {
        const args = parseArgs(argv, spec.flags);
        json = args.bools.has('json');
        if (args.bools.has('help')) {
          io.writeStdout(spec.help(name));
          return EXIT.ok;
        }
        return await spec.run({ name, args, json, env: io.env ?? process.env, exec: io.exec ?? processExec, out: io.writeStdout, err: io.writeStderr });
      } catch (err) {
        if (err instanceof UsageError) {
          io.writeStderr(`tscni ${name}: ${err.message}\n${spec.help(name).split('\n')[0]}\n`);
          return EXIT.usage;
        }
        const e = toCniError(err);
        if (json) io.writeStdout(JSON.stringify({ code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) }) + '\n');
        io.writeStderr(`tscni ${name}: ${e.message}${e.details ? `; ${e.details}` : ''}\n`);
        return EXIT.failure;
      }
    },
  };
}

/** Left-aligned columns for human output. */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
