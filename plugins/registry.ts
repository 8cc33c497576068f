import type { Plugin } from '../lib/cni/plugin.ts';

/**
 * Every plugin this executable implements, by the name it is invoked as. Each loads lazily, so
 * an ADD pays only for the code of its own plugin.
 */
export const PLUGINS: Record<string, () => Promise<{ default: Plugin }>> = {
  loopback: () => import('./loopback/index.ts'),
  bridge: () => import('./bridge/index.ts'),
  tuning: () => import('./tuning/index.ts'),
  bandwidth: () => import('./bandwidth/index.ts'),
  firewall: () => import('./firewall/index.ts'),
  portmap: () => import('./portmap/index.ts'),
  'host-local': () => import('../ipam/host-local/index.ts'),
  vxlan: () => import('./vxlan/index.ts'),
  netpol: () => import('./netpol/index.ts'),
};

export const pluginNames = (): string[] => Object.keys(PLUGINS);

export async function loadPlugin(name: string): Promise<Plugin | undefined> {
  const load = Object.hasOwn(PLUGINS, name) ? PLUGINS[name] : undefined;
  return load ? (await load()).default : undefined;
}
