import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Our built plugins: dist/bin/tscni and a hardlink per plugin. */
export const OUR_BIN = join(ROOT, 'dist', 'bin');
/** The Go reference plugins (Debian containernetworking-plugins). */
export const REF_BIN = '/usr/lib/cni';
export const CNITOOL = process.env.CNITOOL ?? join(ROOT, '.tmp', 'cnitool');
