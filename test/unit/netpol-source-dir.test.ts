import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { directorySource } from '../../plugins/netpol/source-dir.ts';

const dir = mkdtempSync(join(tmpdir(), 'netpol-src-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

describe('directorySource', () => {
  it('reads JSON (a List, one object), YAML documents, and a .json written in YAML syntax alike', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [ns('a1'), ns('a2')] }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(ns('b')));
    writeFileSync(join(dir, 'c.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: c1}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c2}\n');
    writeFileSync(join(dir, 'd.json'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n');
    writeFileSync(join(dir, 'e.json'), 'null');
    const read = directorySource(dir).read();
    expect(read.errors).toEqual([]);
    expect(read.objects.map((o) => (o as { metadata: { name: string } }).metadata.name)).toEqual(['a1', 'a2', 'b', 'c1', 'c2', 'd']);
  });

  it('a file neither JSON nor YAML is one error line naming it; the others are read', () => {
    writeFileSync(join(dir, 'f.json'), '{"apiVersion": "v1", "kind": ');
    const read = directorySource(dir).read();
    expect(read.errors).toHaveLength(1);
    expect(read.errors[0]).toMatch(/^f\.json: document 1: /);
    expect(read.objects).toHaveLength(6);
  });
});
