import { CniError, ErrorCode } from './errors.ts';
import type { Logger } from './log.ts';

type Step = { label: string; run: () => unknown };

/**
 * Compensations for a multi-step change: each step pushes its inverse; disposal runs them
 * last-in-first-out unless commit() was called. It never throws: what it could not undo is logged
 * and kept in `failures` for the caller's error details.
 */
export class Undo implements AsyncDisposable {
  private readonly steps: Step[] = [];
  private committed = false;
  readonly failures: string[] = [];

  /**
   * `fault` (tests only, from TSCNI_FAULT): fail at the step whose label starts with it — its inverse
   * is pushed, then the step throws — or at `commit`, so every rollback path can be proven.
   */
  constructor(
    private readonly log: Logger,
    private readonly fault?: string,
  ) {}

  push(label: string, run: () => unknown): void {
    this.steps.push({ label, run });
    if (this.fault && label.startsWith(this.fault)) throw injected(label);
  }

  commit(): void {
    if (this.fault === 'commit') throw injected('commit');
    this.committed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.committed) return;
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
        this.log.debug('undone', { step: step.label });
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        this.failures.push(`${step.label}: ${why}`);
        this.log.error('could not undo', { step: step.label, error: why });
      }
    }
  }
}

const injected = (step: string) => new CniError(ErrorCode.internal, `injected fault at step "${step}"`, 'TSCNI_FAULT is set');
