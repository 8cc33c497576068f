import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * podman 4.3 with its CNI backend and everything private: containers.conf and storage.conf in `dir`
 * (passed by CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), storage, run root, network configs and
 * plugins there too. The machine's /etc/containers and /etc/cni are never read.
 */
export class Podman {
  private readonly env: Record<string, string>;

  constructor(
    readonly dir: string,
    readonly pluginDir: string,
  ) {
    const confDir = join(dir, 'net.d');
    mkdirSync(confDir, { recursive: true });
    writeFileSync(
      join(dir, 'containers.conf'),
      `[containers]
# podman's default nofile/nproc are above this VM's hard limits: runc would fail to set them
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["${pluginDir}"]
network_config_dir = "${confDir}"

[engine]
# crun 1.8 refuses this VM's cgroup layout
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${join(dir, 'events.log')}"
tmp_dir = "${join(dir, 'tmp')}"
`,
    );
    writeFileSync(
      join(dir, 'storage.conf'),
      `[storage]
driver = "vfs"
graphroot = "${join(dir, 'storage')}"
runroot = "${join(dir, 'run')}"
`,
    );
    this.env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CONTAINERS_CONF: join(dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    };
    writeFileSync(this.env.CONTAINERS_REGISTRIES_CONF!, '');
  }

  get confDir(): string {
    return join(this.dir, 'net.d');
  }

  /** Runs podman; throws with its stderr unless `allowFailure`. */
  run(args: string[], opts: { allowFailure?: boolean; input?: string } = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('podman', args, { env: this.env, encoding: 'utf8', input: opts.input, timeout: 120_000 });
    const out = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (!opts.allowFailure && r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}): ${out.stderr.trim()}`);
    return out;
  }

  /** Best effort: every container, the network and the image, before the dir is deleted. */
  teardown(network: string): void {
    this.run(['rm', '--all', '--force', '--time', '0'], { allowFailure: true });
    this.run(['network', 'rm', '--force', network], { allowFailure: true });
    this.run(['rmi', '--all', '--force'], { allowFailure: true });
  }
}
