// Process start: CNI_COMMAND=VERSION does no work beyond start-up, parse and print.
const STDIN = JSON.stringify({ cniVersion: '1.0.0' });

export default {
  id: 'version',
  title: 'VERSION (process start)',
  notes: 'Target: tscni median ≤ 10 ms. Every CNI call is a process start, so this is the floor under every verb.',
  run(ctx) {
    const time = (file) => ctx.sample(() => ({ VERSION: ctx.timeSpawn(file, { env: { CNI_COMMAND: 'VERSION' }, stdin: STDIN }) })).VERSION;
    return [ctx.compare('VERSION (loopback)', time(ctx.ours('loopback')), time(ctx.ref('loopback')))];
  },
};
