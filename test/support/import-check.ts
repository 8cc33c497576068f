import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { LAYER_RULES, SPAWN_RULES, type LayerRule, type SpawnRule } from './import-rules.ts';

export interface ImportEdge {
  from: string;
  to: string;
  dynamic: boolean;
}

/** Every .ts file (not .d.ts) under the given files and folders of `root`, relative to it. */
export function sourceFiles(root: string, roots: readonly string[]): string[] {
  const walk = (rel: string): string[] => {
    const abs = join(root, rel);
    if (!existsSync(abs)) return [];
    if (statSync(abs).isDirectory()) return readdirSync(abs).sort().flatMap((f) => walk(join(rel, f)));
    return rel.endsWith('.ts') && !rel.endsWith('.d.ts') ? [rel] : [];
  };
  return roots.flatMap(walk);
}

/**
 * The import graph between the files of `root`, as esbuild resolves it: one bundle pass (nothing
 * written) with every source as an entry point, so a file no entry reaches is still checked.
 * Packages and node: built-ins are left out.
 */
export async function importGraph(root: string, entries: readonly string[]): Promise<ImportEdge[]> {
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints: [...entries],
    bundle: true,
    write: false,
    metafile: true,
    outdir: 'out',
    platform: 'node',
    format: 'esm',
    packages: 'external',
    external: ['bun:ffi'],
    logLevel: 'silent',
  });
  const edges: ImportEdge[] = [];
  for (const [from, input] of Object.entries(metafile.inputs)) {
    for (const imp of input.imports) {
      if (imp.external || imp.path.startsWith('node_modules/')) continue;
      edges.push({ from, to: imp.path, dynamic: imp.kind === 'dynamic-import' });
    }
  }
  return edges;
}

const describe = (e: ImportEdge) => `${e.from} → ${e.to} (${e.dynamic ? 'dynamic import()' : 'import'})`;

/** One line per edge that breaks a layer rule: the edge, then the rule. */
export function layerViolations(edges: readonly ImportEdge[], rules: readonly LayerRule[] = LAYER_RULES): string[] {
  const out: string[] = [];
  for (const e of edges) {
    for (const r of rules) if (r.from.test(e.from) && r.to.test(e.to)) out.push(`${describe(e)}: ${r.rule}`);
  }
  return out;
}

/**
 * One line per source line that spawns where a spawn rule forbids it (`file:line: text: rule`).
 * Comment lines are skipped, so a doc comment may still say which tool a function runs.
 */
export function spawnViolations(root: string, files: readonly string[], rules: readonly SpawnRule[] = SPAWN_RULES): string[] {
  const out: string[] = [];
  for (const file of files) {
    const applicable = rules.filter((r) => r.files.test(file));
    if (applicable.length === 0) continue;
    readFileSync(join(root, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.trim();
        if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return;
        for (const r of applicable) if (r.call.test(code)) out.push(`${file}:${i + 1}: ${code}: ${r.rule}`);
      });
  }
  return out;
}

/**
 * One line per import cycle (a strongly connected component of the graph, Tarjan's algorithm),
 * naming one concrete loop through it, e.g. `a.ts → b.ts → a.ts`.
 */
export function importCycles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, ImportEdge[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of next.get(v) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, index.get(to)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    const selfLoop = (next.get(v) ?? []).some((e) => e.to === v);
    if (component.length > 1 || selfLoop) components.push(component);
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((c) => `import cycle: ${loopThrough(c.sort(), next).map(describe).join(', ')}`);
}

/** The shortest loop from the first file of a component back to it, staying inside the component. */
function loopThrough(component: readonly string[], next: ReadonlyMap<string, readonly ImportEdge[]>): ImportEdge[] {
  const inside = new Set(component);
  const start = component[0]!;
  const via = new Map<string, ImportEdge>();
  const queue = [start];
  for (const v of queue) {
    for (const e of next.get(v) ?? []) {
      if (!inside.has(e.to)) continue;
      if (e.to === start) {
        const loop = [e];
        for (let at = v; at !== start; at = via.get(at)!.from) loop.unshift(via.get(at)!);
        return loop;
      }
      if (!via.has(e.to)) {
        via.set(e.to, e);
        queue.push(e.to);
      }
    }
  }
  throw new Error(`no loop through ${start}`);
}
