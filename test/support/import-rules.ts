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
  {
    from: /^cli\//,
    to: /^(plugins|ipam)\/(?!registry\.ts$|[^/]+\/node-api\.ts$)/,
    rule: 'cli/ reaches plugins only through the registry and a plugin\'s node-api.ts',
  },
  { from: /^(main\.ts|lib\/|plugins\/|ipam\/|cli\/)/, to: /^test\//, rule: 'shipped code imports nothing from test/' },
];

/**
 * Where a process may be spawned. Every external tool (ip, bridge, tc, nft, iptables-save/-restore,
 * conntrack, nsenter, sysctl, ethtool) has one runner in lib/ (lib/ip, lib/netfilter) that validates
 * its tokens and types its errors; plugins and IPAM call those runners and never spawn themselves.
 * Checked by a source scan (test/support/import-check.ts processViolations): a call, not an import,
 * is what breaks it, and `Exec` is handed to plugins as a value.
 */
export interface SpawnRule {
  files: RegExp;
  /** What a spawn looks like in source text. */
  call: RegExp;
  rule: string;
}

export const SPAWN_RULES: readonly SpawnRule[] = [
  {
    files: /^(plugins|ipam)\//,
    call: /\.runAsync\s*\(|\bspawn(Sync)?\s*\(|\bexec(File)?Sync\s*\(|\bexecFile\s*\(|\bchild_process\b|\bBun\.spawn/,
    rule: 'plugins/ and ipam/ spawn no process: they call the runners in lib/ (lib/ip, lib/netfilter)',
  },
];

/** The files every edge starts from: the multi-call entry and all shipped sources. */
export const SOURCE_ROOTS: readonly string[] = ['main.ts', 'lib', 'plugins', 'ipam', 'cli'];
