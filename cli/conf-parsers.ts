import { NetConf, parseConf } from '../lib/cni/conf.ts';

/** Parses one plugin config as that plugin's ADD does before any side effect; throws CniError 7 naming the key. */
export type ConfParser = (conf: Record<string, unknown>) => void;

/**
 * Our plugins' own config parsers, by type. Each loads its plugin's config module only when a
 * config uses that type: the CLI shares its binary with plugins whose start time matters.
 * Values that only the runtime supplies (CNI_ARGS, prevResult, the interface name) are left out.
 */
const PARSERS: Record<string, () => Promise<ConfParser>> = {
  loopback: async () => (c) => void parseConf(NetConf(), c),
  bridge: async () => {
    const { BridgeConf, resolveBridge } = await import('../plugins/bridge/conf.ts');
    return (c) => void resolveBridge(parseConf(BridgeConf(), c), undefined);
  },
  'host-local': async () => {
    const { parseHostLocalConf } = await import('../ipam/host-local/config.ts');
    return (c) => void parseHostLocalConf(c, undefined);
  },
  portmap: async () => {
    const { PortmapConf, resolvePortmap } = await import('../plugins/portmap/conf.ts');
    return (c) => void resolvePortmap(parseConf(PortmapConf(), c), { ips: [] }, []);
  },
  firewall: async () => {
    const { FirewallConf } = await import('../plugins/firewall/conf.ts');
    return (c) => void parseConf(FirewallConf(), c);
  },
  tuning: async () => {
    const { TuningConf, resolveTuning } = await import('../plugins/tuning/conf.ts');
    return (c) => void resolveTuning(parseConf(TuningConf(), c), 'eth0', undefined, undefined);
  },
  bandwidth: async () => {
    const { BandwidthConf, resolveLimits } = await import('../plugins/bandwidth/conf.ts');
    return (c) => void resolveLimits(parseConf(BandwidthConf(), c));
  },
  vxlan: async () => {
    const { parseVxlanConf } = await import('../plugins/vxlan/conf.ts');
    return (c) => void parseVxlanConf(c);
  },
};

/** vxlan writes its bridge's IPAM config itself (ranges, routes) from its own: its `ipam` is only a part. */
const BUILDS_OWN_IPAM = new Set(['vxlan']);

/** The IPAM plugin a plugin config delegates to with its own `ipam` section, if any. */
export function delegatedIpam(plugin: Record<string, unknown>): string | undefined {
  const ipam = plugin.ipam;
  if (BUILDS_OWN_IPAM.has(String(plugin.type)) || typeof ipam !== 'object' || ipam === null) return undefined;
  const type = (ipam as { type?: unknown }).type;
  return typeof type === 'string' && type ? type : undefined;
}

export const hasConfParser = (type: string): boolean => Object.hasOwn(PARSERS, type);

/** The parsers for the given plugin types that are ours, loaded once each. */
export async function loadConfParsers(types: Iterable<string>): Promise<Map<string, ConfParser>> {
  const wanted = [...new Set(types)].filter(hasConfParser);
  return new Map(await Promise.all(wanted.map(async (t) => [t, await PARSERS[t]!()] as const)));
}
