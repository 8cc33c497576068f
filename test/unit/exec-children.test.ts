import { describe, expect, it } from 'vitest';
import { processExec } from '../../lib/exec.ts';

// endChildren ends this worker's spawning for good: this file has the module to itself.
describe('processExec.endChildren', () => {
  it('kills a child still running, waits for it, and starts nothing after', async () => {
    const running = processExec.runAsync(['sleep', '30']);
    await processExec.endChildren!();
    await expect(running).rejects.toThrow(/^sleep 30: killed by SIGKILL$/);
    await expect(processExec.runAsync(['true'])).rejects.toThrow(/not starting true: the plugin has answered/);
  });
});
