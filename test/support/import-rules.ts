/**
 * The import rules of the tree, checked by test/unit/architecture.test.ts over every import that
 * esbuild's bundler resolves (test/support/import-check.ts). Paths are relative to the repository.
 *
 * Both static and dynamic `import()` count: lazy loading delays a dependency, it does not remove it.
 * `import type` is erased before the bundler sees it and is not checked (it carries no code).
 */

/** A forbidden direction: no file matching `from` imports a file matching `to`. */
export interface LayerRule {
  from: RegExp;
  to: RegExp;
  rule: string;
}

export const LAYER_RULES: readonly LayerRule[] = [
  { from: /^lib\//, to: /^(plugins|ipam|cli)\//, rule: 'lib/ imports nothing from plugins/, ipam/ or cli/' },
  { from: /^lib\/cni\//, to: /^lib\/ip\//, rule: 'lib/cni (the protocol core) imports nothing from lib/ip' },
  { from: /^(plugins|ipam)\//, to: /^cli\//, rule: 'plugins/ and ipam/ import nothing from cli/' },
  { from: /^(main\.ts|lib\/|plugins\/|ipam\/|cli\/)/, to: /^test\//, rule: 'shipped code imports nothing from test/' },
];


/** The files every edge starts from: the multi-call entry and all shipped sources. */
export const SOURCE_ROOTS: readonly string[] = ['main.ts', 'lib', 'plugins', 'ipam', 'cli'];
