import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonOrUndefined } from '../../support/cni.ts';
import { OUR_BIN } from '../../support/paths.ts';

/**
 * The plugins under test: `PLUGIN_DIR` (default: our dist/bin). Point it at /usr/lib/cni to run the
 * same suite against the Go reference plugins, so that a failure with ours is ours.
 */
export const PLUGIN_DIR = process.env.PLUGIN_DIR || OUR_BIN;

/** IPAM plugins are delegated to, not called by the runtime: linked as-is so tscni keeps delegating in-process. */
const DELEGATED = new Set(['host-local', 'static', 'dhcp']);

export interface PluginCall {
  plugin: string;
  env: Record<string, string>;
  stdin: string;
  stdout: string;
  stderr: string;
  exit: number;
  /** stdin parsed, or undefined. */
  conf: any;
}

export function missingPlugins(names: readonly string[]): string[] {
  return names.filter((n) => !existsSync(join(PLUGIN_DIR, n)));
}

/**
 * A plugin dir for a runtime: each plugin from PLUGIN_DIR behind a small wrapper script that records
 * the call (CNI_* env, stdin, stdout, stderr, exit code) in its own folder under `logDir`, then
 * behaves exactly like the plugin. tscni's own debug log goes to `logDir/tscni.log`.
 */
export class PluginDir {
  constructor(
    readonly dir: string,
    readonly logDir: string,
  ) {}

  static create(dir: string, logDir: string, names: readonly string[]): PluginDir {
    mkdirSync(dir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
    for (const name of names) {
      const real = join(PLUGIN_DIR, name);
      if (!existsSync(real)) continue;
      const file = join(dir, name);
      if (DELEGATED.has(name)) {
        symlinkSync(real, file);
        continue;
      }
      writeFileSync(file, wrapper(name, real, logDir));
      chmodSync(file, 0o755);
    }
    return new PluginDir(dir, logDir);
  }

  calls(): PluginCall[] {
    const read = (dir: string, f: string) => {
      try {
        return readFileSync(join(dir, f), 'utf8');
      } catch {
        return '';
      }
    };
    return readdirSync(this.logDir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
      .map((name) => {
        const d = join(this.logDir, name);
        const stdin = read(d, 'stdin');
        const env = Object.fromEntries(
          read(d, 'env')
            .split('\n')
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        return { plugin: read(d, 'plugin').trim(), env, stdin, stdout: read(d, 'stdout'), stderr: read(d, 'stderr'), exit: Number(read(d, 'exit').trim() || -1), conf: jsonOrUndefined(stdin) };
      });
  }

  /** Every call seen so far, for a failure message. */
  report(): string {
    const lines = this.calls().map((c) =>
      [
        `--- ${c.plugin} ${c.env.CNI_COMMAND ?? '?'} exit=${c.exit}`,
        `env: ${Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ')}`,
        `stdin: ${c.stdin.trim()}`,
        `stdout: ${c.stdout.trim()}`,
        c.stderr.trim() ? `stderr: ${c.stderr.trim()}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    const tscniLog = join(this.logDir, 'tscni.log');
    const ours = existsSync(tscniLog) ? `\n--- tscni.log (last 40 lines)\n${readFileSync(tscniLog, 'utf8').trim().split('\n').slice(-40).join('\n')}` : '';
    return `plugin calls seen (${PLUGIN_DIR}):\n${lines.join('\n') || '(none)'}${ours}`;
  }
}

function wrapper(name: string, real: string, logDir: string): string {
  for (const p of [real, logDir]) if (!/^[\w./-]+$/.test(p)) throw new Error(`unsafe path for a wrapper: ${p}`);
  return `#!/bin/sh
# tscni e2e: records this call of ${name} under ${logDir}, then behaves exactly like ${real}.
PATH=\${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}; export PATH
TSCNI_LOG=\${TSCNI_LOG:-debug:${logDir}/tscni.log}; export TSCNI_LOG
call=${logDir}/$(date +%s%N).$$
mkdir -p "$call"
echo ${name} > "$call/plugin"
env | grep '^CNI_' | sort > "$call/env"
cat > "$call/stdin"
${real} < "$call/stdin" > "$call/stdout" 2> "$call/stderr"
rc=$?
echo $rc > "$call/exit"
cat "$call/stdout"
cat "$call/stderr" >&2
exit $rc
`;
}
