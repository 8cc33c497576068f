import { beforeAll, it } from 'vitest';
import { missingPlugins, PLUGIN_DIR, type PluginDir } from './plugins.ts';

/**
 * One runtime's checks. Each prints a PASS/FAIL/SKIP line; a failure also prints every plugin call
 * the runtime made. When PLUGIN_DIR lacks a plugin the runtime needs, every check is skipped with
 * that reason (never a fake pass).
 */
export class Checks {
  readonly skipReason: string | undefined;
  plugins: PluginDir | undefined;

  constructor(
    readonly runtime: string,
    needs: readonly string[],
  ) {
    const missing = missingPlugins(needs);
    this.skipReason = missing.length ? `${PLUGIN_DIR} has no ${missing.join(', ')}` : undefined;
  }

  /**
   * Starts the runtime before the checks (not when they are all skipped). A failure here is printed
   * with the plugin calls so far, and every check then fails naming it.
   */
  setup(fn: () => unknown): void {
    beforeAll(async () => {
      if (this.skipReason) return;
      try {
        await fn();
      } catch (err) {
        this.failed = `setup: ${err instanceof Error ? err.message : String(err)}`;
        line(`FAIL ${this.runtime}: ${this.failed}\n${this.plugins?.report() ?? ''}`);
      }
    });
  }

  /** The first check that failed: the later ones build on it and fail at once, naming it. */
  private failed: string | undefined;

  /** A check; `skip` gives a reason this one cannot hold for the plugins under test. */
  check(name: string, fn: () => unknown, skip?: string): void {
    it(name, async (ctx) => {
      const reason = this.skipReason ?? skip;
      if (reason) {
        line(`SKIP ${this.runtime}: ${name} (${reason})`);
        ctx.skip(reason);
        return;
      }
      if (this.failed) {
        line(`FAIL ${this.runtime}: ${name} (not run: "${this.failed}" failed)`);
        throw new Error(`not run: "${this.failed}" failed`);
      }
      try {
        await fn();
      } catch (err) {
        this.failed = name;
        line(`FAIL ${this.runtime}: ${name}\n${this.plugins?.report() ?? '(runtime not started)'}`);
        throw err;
      }
      line(`PASS ${this.runtime}: ${name}`);
    });
  }
}

function line(text: string): void {
  process.stdout.write(`e2e ${text}\n`);
}
