import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * A short unique prefix for everything one test makes (netns, links, chains, dirs): 6 chars, so
 * prefix + 9 more still fits the kernel's 15-character interface names. Parallel workers never collide.
 */
function uniquePrefix(): string {
  return 't' + randomBytes(4).toString('hex').slice(0, 5);
}

export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs and returns status/stdout/stderr without throwing. */
export function tryRun(argv: string[], input?: string) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Owns what a test creates and removes it all, last first, even when the test fails:
 * `const s = new Scope(); afterEach(() => s.dispose())`.
 */
export class Scope {
  readonly prefix = uniquePrefix();
  private readonly cleanups: (() => void)[] = [];
  private counter = 0;

  /** A unique name with this scope's prefix: `name('br')` → `t1a2b3br0`. Keep suffixes short. */
  name(suffix = ''): string {
    return `${this.prefix}${suffix}${this.counter++}`;
  }

  defer(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** A new network namespace /run/netns/NAME, with lo up; deleted on dispose. */
  netns(suffix = 'n'): { name: string; path: string } {
    const name = this.name(suffix);
    sh(['ip', 'netns', 'add', name]);
    this.defer(() => tryRun(['ip', 'netns', 'del', name]));
    sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return { name, path: `/run/netns/${name}` };
  }

  /** A host link to remove on dispose (if it still exists). */
  link(name: string): string {
    this.defer(() => tryRun(['ip', 'link', 'del', name]));
    return name;
  }

  tmpdir(): string {
    const dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  dispose(): void {
    while (this.cleanups.length > 0) {
      try {
        this.cleanups.pop()!();
      } catch {
        // keep cleaning
      }
    }
  }
}
