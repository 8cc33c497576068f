import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { importCycles, importGraph, layerViolations, sourceFiles, spawnViolations, type ImportEdge } from '../support/import-check.ts';
import { SOURCE_ROOTS } from '../support/import-rules.ts';
import { ROOT } from '../support/paths.ts';
import { Scope } from '../support/scope.ts';

describe('the tree follows the import rules (test/support/import-rules.ts)', () => {
  let edges: ImportEdge[];
  const graph = async () => (edges ??= await importGraph(ROOT, sourceFiles(ROOT, SOURCE_ROOTS)));

  it('the graph holds static and dynamic edges (so an empty graph cannot pass)', async () => {
    const all = await graph();
    expect(all).toContainEqual({ from: 'main.ts', to: 'lib/cni/skel.ts', dynamic: false });
    expect(all).toContainEqual({ from: 'plugins/registry.ts', to: 'plugins/bridge/index.ts', dynamic: true });
  });

  it('no upward import', async () => {
    expect(layerViolations(await graph())).toEqual([]);
  });

  it('no import cycle, through static or dynamic imports', async () => {
    expect(importCycles(await graph())).toEqual([]);
  });

  it('no plugin or IPAM module spawns a process: they call the runners in lib/', () => {
    const files = sourceFiles(ROOT, SOURCE_ROOTS);
    expect(files).toContain('plugins/vxlan/kernel.ts');
    expect(spawnViolations(ROOT, files)).toEqual([]);
  });
});

describe('the check fails on a deliberate violation', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** A tiny tree: path → source. */
  function tree(files: Record<string, string>): string {
    const root = s.tmpdir();
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }

  it('upward imports, static and dynamic, each named with the rule it breaks', async () => {
    const root = tree({
      'lib/cni/skel.ts': `import { ipBatch } from '../ip/ip.ts';\nexport const run = () => ipBatch;\n`,
      'lib/ip/ip.ts': `export const ipBatch = 1;\n`,
      'lib/store/load.ts': `export const load = () => import('../../plugins/bridge/index.ts');\n`,
      'plugins/bridge/index.ts': `import { help } from '../../cli/help.ts';\nexport default help;\n`,
      'cli/help.ts': `import { PLUGINS } from '../plugins/registry.ts';\nexport const help = PLUGINS;\n`,
      'plugins/registry.ts': `export const PLUGINS = {};\n`,
    });
    const edges = await importGraph(root, sourceFiles(root, SOURCE_ROOTS));
    expect(layerViolations(edges).sort()).toEqual([
      'lib/cni/skel.ts → lib/ip/ip.ts (import): lib/cni (the protocol core) imports nothing from lib/ip',
      'lib/store/load.ts → plugins/bridge/index.ts (dynamic import()): lib/ imports nothing from plugins/, ipam/ or cli/',
      'plugins/bridge/index.ts → cli/help.ts (import): plugins/ and ipam/ import nothing from cli/',
    ]);
  });

  it('an import cycle, also one closed by a dynamic import(), names a loop', async () => {
    const root = tree({
      'lib/cni/context.ts': `import { delegate } from './delegate.ts';\nexport const createContext = () => delegate;\n`,
      'lib/cni/delegate.ts': `import { createContext } from './context.ts';\nexport const delegate = () => createContext;\n`,
      'plugins/registry.ts': `export const load = () => import('./vxlan/index.ts');\n`,
      'plugins/vxlan/index.ts': `export const bridge = () => import('../registry.ts');\n`,
    });
    const edges = await importGraph(root, sourceFiles(root, SOURCE_ROOTS));
    expect(importCycles(edges).sort()).toEqual([
      'import cycle: lib/cni/context.ts → lib/cni/delegate.ts (import), lib/cni/delegate.ts → lib/cni/context.ts (import)',
      'import cycle: plugins/registry.ts → plugins/vxlan/index.ts (dynamic import()), plugins/vxlan/index.ts → plugins/registry.ts (dynamic import())',
    ]);
  });

  it('cli/ reaching into a plugin past its node-api.ts is named; the registry and node-api.ts are not', async () => {
    const root = tree({
      'cli/vxlan.ts': `import { sync } from '../plugins/vxlan/node-api.ts';\nimport { lock } from '../plugins/vxlan/lock.ts';\nimport { PLUGINS } from '../plugins/registry.ts';\nexport const x = [sync, lock, PLUGINS];\n`,
      'plugins/vxlan/node-api.ts': `export const sync = 1;\n`,
      'plugins/vxlan/lock.ts': `export const lock = 1;\n`,
      'plugins/registry.ts': `export const PLUGINS = {};\n`,
    });
    const edges = await importGraph(root, sourceFiles(root, SOURCE_ROOTS));
    expect(layerViolations(edges)).toEqual([
      "cli/vxlan.ts → plugins/vxlan/lock.ts (import): cli/ reaches plugins only through the registry and a plugin's node-api.ts",
    ]);
  });

  it('a spawn in a plugin or IPAM module, in any of its forms, names the file, line and rule', () => {
    const rule = 'plugins/ and ipam/ spawn no process: they call the runners in lib/ (lib/ip, lib/netfilter)';
    const root = tree({
      'plugins/tc/index.ts': `// runs tc.runAsync(argv) through lib\nexport const run = (exec) => exec.runAsync(['tc', '-batch', '-']);\n`,
      'plugins/x/spawn.ts': `import { spawnSync } from 'node:child_process';\nexport const x = () => spawnSync('ip');\n`,
      'ipam/y/index.ts': `export const y = () => Bun.spawn(['conntrack']);\n`,
      'lib/ip/ip.ts': `export const ipBatch = (exec) => exec.runAsync(['ip', '-batch', '-']);\n`,
      'cli/vxlan.ts': `export const del = (exec) => exec.runAsync(['ip', 'link', 'del', 'x']);\n`,
    });
    expect(spawnViolations(root, sourceFiles(root, SOURCE_ROOTS))).toEqual([
      `plugins/tc/index.ts:2: export const run = (exec) => exec.runAsync(['tc', '-batch', '-']);: ${rule}`,
      `plugins/x/spawn.ts:1: import { spawnSync } from 'node:child_process';: ${rule}`,
      `plugins/x/spawn.ts:2: export const x = () => spawnSync('ip');: ${rule}`,
      `ipam/y/index.ts:1: export const y = () => Bun.spawn(['conntrack']);: ${rule}`,
    ]);
  });

  it('a longer cycle is named along its loop; a file importing itself is a cycle', () => {
    const edge = (from: string, to: string) => ({ from, to, dynamic: false });
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('c.ts', 'a.ts'), edge('c.ts', 'd.ts'), edge('d.ts', 'd.ts')]).sort()).toEqual([
      'import cycle: a.ts → b.ts (import), b.ts → c.ts (import), c.ts → a.ts (import)',
      'import cycle: d.ts → d.ts (import)',
    ]);
  });
});
