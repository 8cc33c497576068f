import { describe, expect, it } from 'vitest';
import type { Exec } from '../../lib/exec.ts';
import { CniError } from '../../lib/cni/errors.ts';
import { definePlugin } from '../../lib/cni/plugin.ts';
import { ENV_ADD, run } from '../support/fake-io.ts';

/** An Exec whose spawns never finish until endChildren, which records when it ran. */
function hangingExec(events: string[]): Exec {
  const pending: (() => void)[] = [];
  return {
    runAsync: (argv) => new Promise((resolve) => pending.push(() => resolve({ argv, status: null, signal: 'SIGKILL', stdout: '', stderr: '' }))),
    endChildren: async () => {
      events.push(`end ${pending.length} children`);
      for (const kill of pending.splice(0)) kill();
    },
  };
}

const plugin = (fail: boolean) =>
  definePlugin({
    name: 'sibling',
    summary: 'starts a process beside a step that fails or finishes',
    validate: () => {},
    async add(ctx) {
      void ctx.exec.runAsync(['ip', 'monitor']); // a sibling step, abandoned
      if (fail) throw new CniError(7, 'the IPAM failed');
      return { interfaces: [] };
    },
    del: async () => {},
    check: async () => {},
  });

describe('the core ends every child before it answers', () => {
  for (const fail of [true, false]) {
    it(`when the verb ${fail ? 'fails' : 'succeeds'}`, async () => {
      const events: string[] = [];
      const r = await run(plugin(fail), ENV_ADD, { cniVersion: '1.0.0', name: 'n', type: 'sibling' }, { exec: hangingExec(events), writeStdout: (t) => void events.push(`answer ${JSON.parse(t).code ?? 'result'}`) });
      expect(r.code).toBe(fail ? 1 : 0);
      expect(events).toEqual(['end 1 children', `answer ${fail ? 7 : 'result'}`]);
    });
  }
});
