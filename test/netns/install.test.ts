import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { execPlugin } from '../support/cni.ts';
import { OUR_BIN, REF_BIN, ROOT } from '../support/paths.ts';
import { Scope, tryRun } from '../support/scope.ts';

const install = (...args: string[]) => tryRun(['bash', join(ROOT, 'scripts', 'install.sh'), ...args]);
const plugins = (): string[] => JSON.parse(tryRun([join(OUR_BIN, 'tscni'), 'version', '--json']).stdout).plugins;
const ino = (f: string) => statSync(f).ino;

describe('scripts/install.sh', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('installs tscni and a hardlink per plugin that works as that plugin', () => {
    const dir = join(s.tmpdir(), 'bin');
    const r = install('--dir', dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`into ${dir}`);
    expect(plugins()).toContain('loopback');
    for (const name of plugins()) expect(ino(join(dir, name)), name).toBe(ino(join(dir, 'tscni')));
    expect(statSync(join(dir, 'tscni')).mode & 0o777).toBe(0o755);
    const v = execPlugin(join(dir, 'loopback'), { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' });
    expect(v.json.supportedVersions).toContain('1.1.0');
  });

  it('installs again over its own files without --force', () => {
    const dir = s.tmpdir();
    expect(install('--dir', dir).status).toBe(0);
    const first = ino(join(dir, 'loopback'));
    const again = install('--dir', dir);
    expect(again.status, again.stderr).toBe(0);
    expect(ino(join(dir, 'loopback'))).not.toBe(first);
    expect(ino(join(dir, 'loopback'))).toBe(ino(join(dir, 'tscni')));
  });

  it('recognises a copy of tscni (not a hardlink) as ours', () => {
    const dir = s.tmpdir();
    copyFileSync(join(OUR_BIN, 'tscni'), join(dir, 'loopback'));
    expect(install('--dir', dir).status).toBe(0);
  });

  it('refuses to replace a file that is not ours, installs nothing, and names the file', () => {
    const dir = s.tmpdir();
    copyFileSync(join(REF_BIN, 'loopback'), join(dir, 'loopback'));
    writeFileSync(join(dir, 'tscni'), '#!/bin/sh\necho not ours\n');
    const before = readFileSync(join(dir, 'loopback'));
    const r = install('--dir', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('refusing to replace');
    expect(r.stderr).toContain(join(dir, 'loopback'));
    expect(r.stderr).toContain(join(dir, 'tscni'));
    expect(readFileSync(join(dir, 'loopback')).equals(before)).toBe(true);
    expect(readFileSync(join(dir, 'tscni'), 'utf8')).toBe('#!/bin/sh\necho not ours\n');
  });

  it('--force replaces it', () => {
    const dir = s.tmpdir();
    copyFileSync(join(REF_BIN, 'loopback'), join(dir, 'loopback'));
    const r = install('--dir', dir, '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(ino(join(dir, 'loopback'))).toBe(ino(join(dir, 'tscni')));
  });

  it('leaves files of other plugins alone', () => {
    const dir = s.tmpdir();
    copyFileSync(join(REF_BIN, 'portmap'), join(dir, 'macvlan'));
    expect(install('--dir', dir).status).toBe(0);
    expect(ino(join(dir, 'macvlan'))).not.toBe(ino(join(dir, 'tscni')));
  });

  it('rejects unknown arguments', () => {
    expect(install('--dri', '/tmp').status).toBe(2);
  });
});
