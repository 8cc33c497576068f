import * as z from 'zod/mini';
import { parseConf, stateDirOf } from '../../lib/cni/conf.ts';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { optBoolean, optString, string } from '../../lib/cni/schemas.ts';
import type { Result } from '../../lib/cni/result.ts';
import { formatCidr, formatIp, network, parseCidr, parseIp, type Family } from '../../lib/net/ip.ts';
import { CHAIN_NAME } from '../../lib/netfilter/iptables.ts';

const port = lazy(() => z.number().check(z.int(), z.minimum(1), z.maximum(65535)));

const PortMapping = () =>
  z.looseObject({
    hostPort: port(),
    containerPort: port(),
    protocol: optString(),
    hostIP: optString(),
  });

export const PortmapConf = lazy(() =>
  z.looseObject({
    name: string(),
    backend: z.optional(z.enum(['iptables', 'nftables'])),
    snat: optBoolean(),
    masqAll: optBoolean(),
    markMasqBit: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(31))),
    externalSetMarkChain: optString(),
    conditionsV4: z.optional(z.nullable(z.array(string()))),
    conditionsV6: z.optional(z.nullable(z.array(string()))),
    runtimeConfig: z.optional(z.nullable(z.looseObject({ portMappings: z.optional(z.nullable(z.array(PortMapping()))) }))),
    /** Where the forwarded attachments are marked (ours; the reference keeps nothing). */
    dataDir: optString(),
  }),
);
export type PortmapConf = z.infer<ReturnType<typeof PortmapConf>>;

const DEFAULT_DATA_DIR = '/run/tscni/portmap';

/** Where forwarded attachments are marked: every verb resolves and checks it here before touching a file. */
export const forwardingDir = (conf: Pick<PortmapConf, 'dataDir'>): string => stateDirOf(conf.dataDir, DEFAULT_DATA_DIR);

export const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface Mapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** Canonical text; undefined = every host address of the family. */
  hostIP?: string;
}

/** What to forward for one address family. */
export interface FamilyPlan {
  family: Family;
  /** The container's address (first of the family in prevResult) and its subnet. */
  containerIp: string;
  subnet: string;
  mappings: Mapping[];
  conditions: string[];
}

export interface Portmap {
  backend: 'iptables' | 'nftables';
  snat: boolean;
  masqAll: boolean;
  /** Mark for the iptables SETMARK chain, e.g. `0x2000/0x2000`. */
  mark: string;
  /** A chain the user keeps that marks packets for masquerade, instead of CNI-HOSTPORT-SETMARK. */
  externalSetMarkChain?: string;
  families: FamilyPlan[];
}

const UNSAFE_CONDITION = /[\x00-\x1f\x7f"'\\;#]/;

function checkConditions(list: readonly string[] | null | undefined, key: string): void {
  for (const c of list ?? []) {
    if (c === '' || UNSAFE_CONDITION.test(c)) throw invalidConfig(`invalid ${key} entry ${JSON.stringify(c)}`, 'quotes, backslashes, ";", "#" and control characters are not allowed');
  }
}

/**
 * Everything portmap checks in its config, runtimeConfig's mappings included (empty: touch nothing):
 * code 7 before anything is touched, on every ADD, with or without mappings (as the reference).
 */
export function parsePortmap(raw: unknown): { conf: PortmapConf; dir: string; mappings: Mapping[] } {
  const conf = parseConf(PortmapConf(), raw);
  const dir = forwardingDir(conf);
  if (conf.markMasqBit !== undefined && conf.externalSetMarkChain) throw invalidConfig('cannot specify externalSetMarkChain and markMasqBit');
  if (conf.externalSetMarkChain !== undefined && !CHAIN_NAME.test(conf.externalSetMarkChain)) throw invalidConfig(`invalid externalSetMarkChain ${JSON.stringify(conf.externalSetMarkChain)}`);
  checkConditions(conf.conditionsV4, 'conditionsV4');
  checkConditions(conf.conditionsV6, 'conditionsV6');
  return { conf, dir, mappings: parseMappings(conf) };
}

/** The mappings from runtimeConfig, normalised and checked. */
function parseMappings(conf: PortmapConf): Mapping[] {
  const seen = new Set<string>();
  return (conf.runtimeConfig?.portMappings ?? []).map((m, i) => {
    const protocol = (m.protocol || 'tcp').toLowerCase() as Protocol;
    if (!PROTOCOLS.includes(protocol)) throw invalidConfig(`invalid protocol ${JSON.stringify(m.protocol)} in portMappings[${i}]`, 'must be tcp, udp or sctp');
    let hostIP: string | undefined;
    if (m.hostIP) {
      const ip = parseIp(m.hostIP);
      if (!ip) throw invalidConfig(`invalid hostIP ${JSON.stringify(m.hostIP)} in portMappings[${i}]`);
      if (ip.value !== 0n) hostIP = formatIp(ip); // 0.0.0.0 and :: mean every address
    }
    const key = `${protocol}/${m.hostPort}/${hostIP ?? '*'}`;
    if (seen.has(key)) throw invalidConfig(`duplicate host port ${m.hostPort}/${protocol} in portMappings`);
    seen.add(key);
    return { hostPort: m.hostPort, containerPort: m.containerPort, protocol, ...(hostIP ? { hostIP } : {}) };
  });
}

/** What to forward, from what `parsePortmap` accepted and the container's addresses in prevResult. */
export function resolvePortmap(conf: PortmapConf, prev: Result, mappings: Mapping[]): Portmap {
  const bit = conf.markMasqBit ?? 13;
  const mark = `0x${(2 ** bit).toString(16)}`;
  const families: FamilyPlan[] = [];
  for (const family of [4, 6] as const) {
    const first = (prev.ips ?? []).map((ip) => parseCidr(ip.address)).find((c) => c?.ip.family === family);
    if (!first) continue;
    const mine = mappings.filter((m) => !m.hostIP || (m.hostIP.includes(':') ? 6 : 4) === family);
    if (mine.length === 0) continue;
    families.push({
      family,
      containerIp: formatIp(first.ip),
      subnet: formatCidr({ ip: network(first), prefix: first.prefix }),
      mappings: mine,
      conditions: [...((family === 4 ? conf.conditionsV4 : conf.conditionsV6) ?? [])],
    });
  }
  return {
    backend: conf.backend ?? 'iptables',
    snat: conf.snat ?? true,
    masqAll: conf.masqAll ?? false,
    mark: `${mark}/${mark}`,
    ...(conf.externalSetMarkChain ? { externalSetMarkChain: conf.externalSetMarkChain } : {}),
    families,
  };
}
