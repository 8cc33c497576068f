import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../../support/scope.ts';

/** The one image every e2e check runs: busybox-static with all its applets, nothing else. */
export const IMAGE_REF = 'docker.io/library/tscni-e2e:latest';
const BUSYBOX = '/bin/busybox';

export interface Image {
  /** A plain rootfs tarball, for `podman import`. */
  rootfsTar: string;
  /** An OCI image layout archive, for `ctr image import`. */
  ociTar: string;
}

const sha256 = (data: Buffer | string) => 'sha256:' + createHash('sha256').update(data).digest('hex');

function buildRootfs(dir: string): void {
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'www']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  const applets = sh([BUSYBOX, '--list']).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\n');
}

/** Builds the image from the busybox-static package into `dir` (no registry, no network). */
export function buildImage(dir: string): Image {
  const rootfs = join(dir, 'rootfs');
  buildRootfs(rootfs);
  const rootfsTar = join(dir, 'rootfs.tar');
  sh(['tar', '--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', rootfsTar, '.']);

  const layout = join(dir, 'oci');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (data: Buffer | string) => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest.slice('sha256:'.length)), data);
    return { digest, size: Buffer.byteLength(data) };
  };
  const layer = blob(readFileSync(rootfsTar));
  const config = blob(
    JSON.stringify({
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sleep', '3600'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'io.containerd.image.name': IMAGE_REF, 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  const ociTar = join(dir, 'oci.tar');
  sh(['tar', '--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', layout, '-cf', ociTar, '.']);
  return { rootfsTar, ociTar };
}
