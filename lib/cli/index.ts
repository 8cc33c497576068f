import { pluginNames } from '../../plugins/registry.ts';
import { SUPPORTED_VERSIONS } from '../cni/versions.ts';

export const TSCNI_VERSION = '0.1.0';

export interface CliIo {
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

const HELP = `tscni ${TSCNI_VERSION} — CNI plugins in one executable

Usage:
  tscni <command> [options]

Commands:
  version           print the tscni version, CNI spec versions and plugins
  help              show this help

Plugins (run by a container runtime through a link of that name, e.g. /opt/cni/bin/loopback):
  ${'{plugins}'}

Environment:
  TSCNI_LOG         LEVEL, PATH or LEVEL:PATH — plugin log level (error|warn|info|debug) and file
`;

/** The operator command: `tscni` invoked under its own name. Returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [command = 'help', ...rest] = args;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      io.writeStdout(HELP.replace('{plugins}', pluginNames().join(', ')));
      return 0;
    case 'version':
    case '--version': {
      const info = { version: TSCNI_VERSION, cniVersions: SUPPORTED_VERSIONS, plugins: pluginNames() };
      io.writeStdout(rest.includes('--json') ? JSON.stringify(info) + '\n' : `tscni ${info.version}\nCNI spec: ${info.cniVersions.join(', ')}\nplugins: ${info.plugins.join(', ')}\n`);
      return 0;
    }
    default:
      io.writeStderr(`tscni: unknown command ${JSON.stringify(command)}; see 'tscni --help'\n`);
      return 2;
  }
}
