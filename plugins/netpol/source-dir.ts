import { readdirSync, readFileSync, watch as fsWatch } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isManifest, sourceStamp } from './state.ts';

/**
 * Where Kubernetes objects come from, behind a narrow interface (the etcd and API-server sources
 * come next), and the embedded default: a directory of manifests as `kubectl apply -f DIR` reads
 * them — *.yaml, *.yml, *.json, several documents per file, `kind: List` (or `…List`) unpacked.
 * Loaded only by sync, never on ADD's fast path (the yaml library costs start-up time).
 *
 * Public surface:
 *   interface PolicySource { describe, stamp(), read(), watch(onChange) }
 *   directorySource(dir): PolicySource
 */
export interface PolicySource {
  readonly describe: string;
  /** Changes whenever what read() returns may have changed (state.ts: sourceStamp). */
  stamp(): string;
  /** Raw objects, unvalidated, and what could not be parsed (one line per file or document). Throws when the source cannot be read at all. */
  read(): { objects: unknown[]; errors: string[] };
  watch(onChange: () => void): { close(): void };
}

export function directorySource(dir: string): PolicySource {
  return {
    describe: `directory ${dir}`,
    stamp: () => sourceStamp(dir),
    read: () => readDirectory(dir),
    watch(onChange) {
      const w = fsWatch(dir, (_event, name) => {
        if (name === null || isManifest(name)) onChange();
      });
      return { close: () => w.close() };
    },
  };
}

function readDirectory(dir: string): { objects: unknown[]; errors: string[] } {
  const names = readdirSync(dir).filter(isManifest).sort();
  const objects: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    // a .json file is usually one JSON document: JSON.parse is ~100× faster than the YAML parser on it
    const collect = (value: unknown, document: number) => {
      if (value === null || value === undefined) return;
      unpackList(value).forEach((o, j) => {
        if (isMapping(o)) objects.push(o);
        else errors.push(`${name}: document ${document}${o === value ? '' : `: items[${j}]`}: not an object (a manifest is a mapping with kind and metadata)`);
      });
    };
    const json = name.endsWith('.json') ? parseJson(text) : undefined;
    if (json !== undefined) {
      collect(json, 1);
      continue;
    }
    parseAllDocuments(text, { uniqueKeys: false }).forEach((doc, i) => {
      if (!('errors' in doc)) return; // an empty stream
      if (doc.errors.length) errors.push(`${name}: document ${i + 1}: ${doc.errors[0]!.message.split('\n')[0]}`);
      else collect(doc.toJS({ maxAliasCount: 100 }), i + 1);
    });
  }
  return { objects, errors };
}

const isMapping = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One JSON document, or undefined: several documents, or YAML syntax, go to the YAML parser. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `kind: List` (and `PodList`, …) holds its objects in `items`. */
function unpackList(value: unknown): unknown[] {
  const o = value as { kind?: unknown; items?: unknown };
  if (typeof o === 'object' && typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) return o.items;
  return [value];
}
