// loopback ADD then DEL of the same attachment, alternating, in one namespace per implementation.
const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'bench-lo', type: 'loopback' });

export default {
  id: 'loopback',
  title: 'loopback ADD / DEL',
  notes: 'Direct exec, cniVersion 1.0.0, one namespace per implementation; each iteration is an ADD (lo up) then a DEL (lo down).',
  run(ctx) {
    const time = (dir, file) => {
      const ns = ctx.netns();
      const env = (command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(0), CNI_NETNS: ns.path, CNI_IFNAME: 'lo', CNI_PATH: dir });
      return ctx.sample(() => ({
        ADD: ctx.timeSpawn(file, { env: env('ADD'), stdin: conf }),
        DEL: ctx.timeSpawn(file, { env: env('DEL'), stdin: conf }),
      }));
    };
    const ours = time(ctx.oursDir, ctx.ours('loopback'));
    const ref = time(ctx.refDir, ctx.ref('loopback'));
    return [ctx.compare('loopback ADD', ours.ADD, ref.ADD), ctx.compare('loopback DEL', ours.DEL, ref.DEL)];
  },
};
