import { pluginNames } from '../plugins/registry.ts';
import { SUPPORTED_VERSIONS } from '../lib/cni/versions.ts';
import type { CliCommand, CliIo } from './command.ts';

export type { CliIo } from './command.ts';

export const TSCNI_VERSION = '0.1.0';

/**
 * Subcommands, loaded only when used: the CLI shares its binary with plugins whose start time
 * matters. Adding one is one line here and a module whose default export is a CliCommand.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ default: CliCommand }> }> = {
  add: { summary: 'add a container to a network: ADD every plugin of its conflist, cache the result', load: () => import('./network-command.ts') },
  check: { summary: 'CHECK a container\'s attachment against the cached result', load: () => import('./network-command.ts') },
  del: { summary: 'remove a container from a network: DEL every plugin, in reverse', load: () => import('./network-command.ts') },
  gc: { summary: 'DEL stale cached attachments, then GC every plugin with the valid ones', load: () => import('./network-command.ts') },
  status: { summary: 'STATUS of every plugin of a network', load: () => import('./network-command.ts') },
  ipam: { summary: 'ipam ls [<network>] | ipam leaks — address reservations and leaked ones', load: () => import('./ipam-command.ts') },
  doctor: { summary: 'check this node: plugin links, configs, bridges vs IPAM, stale rules', load: () => import('./doctor.ts') },
  policy: { summary: 'policy sync [--watch] | policy ls | policy explain FROM TO PORT/PROTO — NetworkPolicy on this node', load: () => import('./policy.ts') },
  vxlan: { summary: 'vxlan sync [--watch] | vxlan teardown — this node\'s overlay device, peers and etcd lease', load: () => import('./vxlan.ts') },
};

const HELP = `tscni ${TSCNI_VERSION} — CNI plugins in one executable

Usage:
  tscni <command> [options]      (tscni <command> --help for its options)

Commands:
{commands}
  version           print the tscni version, CNI spec versions and plugins
  help              show this help

Plugins (run by a container runtime through a link of that name, e.g. /opt/cni/bin/loopback):
  {plugins}

Environment:
  NETCONFPATH, CNI_PATH, CNI_IFNAME, CNI_ARGS, CAP_ARGS, CNI_CONTAINERID, CNI_CACHEDIR — as cnitool
  TSCNI_LOG         LEVEL, PATH or LEVEL:PATH — plugin log level (error|warn|info|debug) and file

Exit codes: 0 ok, 1 failure, 2 usage.
`;

function help(): string {
  const commands = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(18)}${c.summary}`).join('\n');
  return HELP.replace('{commands}', commands).replace('{plugins}', pluginNames().join(', '));
}

/** The operator command: `tscni` invoked under its own name. Returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [command = 'help', ...rest] = args;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      io.writeStdout(help());
      return 0;
    case 'version':
    case '--version': {
      const info = { version: TSCNI_VERSION, cniVersions: SUPPORTED_VERSIONS, plugins: pluginNames() };
      io.writeStdout(rest.includes('--json') ? JSON.stringify(info) + '\n' : `tscni ${info.version}\nCNI spec: ${info.cniVersions.join(', ')}\nplugins: ${info.plugins.join(', ')}\n`);
      return 0;
    }
  }
  const sub = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!sub) {
    io.writeStderr(`tscni: unknown command ${JSON.stringify(command)}; see 'tscni --help'\n`);
    return 2;
  }
  return (await sub.load()).default.run(command, rest, io);
}
