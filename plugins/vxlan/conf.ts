import * as z from 'zod/mini';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { parseConf } from '../../lib/cni/conf.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { canonicalIp, containsCidr, formatCidr, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
import { resolvePolicy } from '../bridge/conf.ts';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const ABS_PATH = /^\/[A-Za-z0-9_.@:+/-]*$/;
const ETCD_PREFIX = /^\/[A-Za-z0-9_.@:+/-]*$/;

const ifname = () => z.string().check(z.regex(IFNAME, 'must be an interface name (1-15 of A-Z a-z 0-9 _ . -)'));
const absPath = () =>
  z.string().check(
    z.regex(ABS_PATH, 'must be an absolute path of plain characters'),
    z.refine((p) => !p.split('/').includes('..'), 'must not contain ..'),
  );

export const PeerEntry = lazy(() =>
  z.object({
    subnet: z.optional(z.string()),
    subnet6: z.optional(z.string()),
    ip: z.optional(z.string()),
    ip6: z.optional(z.string()),
    mac: z.optional(z.string()),
    name: z.optional(z.string()),
  }),
);
export type PeerEntry = z.infer<ReturnType<typeof PeerEntry>>;

export const EtcdConf = lazy(() =>
  z.object({
    endpoints: z.array(z.string().check(z.regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+\/?$/, 'must be http(s)://host:port'))).check(z.minLength(1, 'needs at least one endpoint')),
    prefix: z._default(z.string().check(z.regex(ETCD_PREFIX, 'must start with / and hold plain characters')), '/coreos.com/network'),
    trustedCAFile: z.optional(absPath()),
    certFile: z.optional(absPath()),
    keyFile: z.optional(absPath()),
    /** Seconds; the plugin refreshes it on every ADD and `tscni vxlan sync --watch` keeps it alive. */
    leaseTTL: z._default(z.number().check(z.int(), z.minimum(5), z.maximum(30 * 86400)), 86400),
  }),
);
export type EtcdConf = z.infer<ReturnType<typeof EtcdConf>>;

export const VxlanConf = lazy(() =>
  z.looseObject({
    cniVersion: z.optional(z.string()),
    name: z.string(),
    /** The IPv4 cluster network every node's IPv4 pod subnet comes from (this, network6, or both). */
    network: z.optional(z.string()),
    /** This node's IPv4 pod subnet; leased from etcd when absent. */
    subnet: z.optional(z.string()),
    subnetLen: z.optional(z.number().check(z.int(), z.minimum(8), z.maximum(30))),
    /** The IPv6 cluster network (flannel's IPv6Network). */
    network6: z.optional(z.string()),
    /** This node's IPv6 pod subnet; leased from etcd when absent. */
    subnet6: z.optional(z.string()),
    subnetLen6: z._default(z.number().check(z.int(), z.minimum(16), z.maximum(124)), 64),
    vni: z._default(z.number().check(z.int(), z.minimum(0), z.maximum(16777215)), 1),
    port: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(65535)), 4789),
    /** The underlay interface; default: the interface of the default route. */
    underlay: z.optional(ifname()),
    /** The underlay address to send from; default: the first global address of the underlay. */
    localIP: z.optional(z.string()),
    mtu: z.optional(z.number().check(z.int(), z.minimum(576), z.maximum(65535))),
    device: z.optional(ifname()),
    bridge: z._default(ifname(), 'cni0'),
    ipMasq: z._default(z.boolean(), false),
    isDefaultGateway: z._default(z.boolean(), false),
    /** Turns off tx-checksum-ip-generic (kernels with the VXLAN checksum bug); costs throughput. */
    disableTxChecksum: z._default(z.boolean(), false),
    peers: z.optional(z.array(z.unknown())),
    peersFile: z.optional(absPath()),
    etcd: z.optional(EtcdConf()),
    stateDir: z._default(absPath(), '/var/lib/tscni/vxlan'),
    /** Passed to host-local (e.g. dataDir); ranges and routes are ours. */
    ipam: z.optional(z.looseObject({ type: z.optional(z.string()) })),
  }),
);
type Loose = z.infer<ReturnType<typeof VxlanConf>>;
/** The config's known keys (the loose object's index signature dropped). */
type RawConf = { [K in keyof Loose as string extends K ? never : K]: Loose[K] };

/** A node's pod subnets: one per cluster network of the config. */
export interface NodeSubnets {
  v4?: Cidr | undefined;
  v6?: Cidr | undefined;
}

/** The subnets as text, IPv4 first: `10.244.1.0/24 fd00:10:244:1::/64`. */
export const subnetsText = (s: NodeSubnets): string => [s.v4, s.v6].filter((c): c is Cidr => c !== undefined).map(formatCidr).join(' ');

/** Which pod families the config carries. */
export const podFamilies = (conf: Pick<Conf, 'network' | 'network6'>) => ({ v4: conf.network !== undefined, v6: conf.network6 !== undefined });

export const DEFAULT_PEERS_FILE = '/etc/tscni/vxlan-peers.json';

export type PeerSource = { kind: 'inline'; entries: unknown[] } | { kind: 'file'; path: string } | { kind: 'etcd'; etcd: EtcdConf };

/** The parsed config with its derived values: everything a verb decides from, before acting. */
export interface Conf extends Omit<RawConf, 'network' | 'subnet' | 'network6' | 'subnet6' | 'localIP'> {
  /** At least one of network and network6 is set; a family's subnet only with its network. */
  network: Cidr | undefined;
  subnet: Cidr | undefined;
  subnetLen: number;
  network6: Cidr | undefined;
  subnet6: Cidr | undefined;
  localIP: string | undefined;
  device: string;
  source: PeerSource;
}

export function parseVxlanConf(raw: unknown): Conf {
  const c = parseConf(VxlanConf(), raw);
  if (c.network === undefined && c.network6 === undefined) throw invalidConfig('network or network6 is required', 'network is the IPv4 cluster network, network6 the IPv6 one; set one or both');
  const v4 = clusterFamily(4, { network: c.network, subnet: c.subnet, subnetLen: c.subnetLen }, ['network', 'subnet', 'subnetLen']);
  const v6 = clusterFamily(6, { network: c.network6, subnet: c.subnet6, subnetLen: c.subnetLen6 }, ['network6', 'subnet6', 'subnetLen6']);
  const network = v4?.network;
  const subnet = v4?.subnet;
  const subnetLen = v4?.subnetLen ?? 24;
  let localIP: string | undefined;
  if (c.localIP !== undefined) {
    localIP = canonicalIp(c.localIP);
    if (!localIP) throw invalidConfig(`invalid localIP ${JSON.stringify(c.localIP)}`);
  }
  const given = [c.peers !== undefined, c.peersFile !== undefined, c.etcd !== undefined].filter(Boolean).length;
  if (given > 1) throw invalidConfig('choose one peer source: peers, peersFile or etcd');
  const source: PeerSource = c.etcd
    ? { kind: 'etcd', etcd: c.etcd }
    : c.peers
      ? { kind: 'inline', entries: c.peers }
      : { kind: 'file', path: c.peersFile ?? DEFAULT_PEERS_FILE };
  if (source.kind !== 'etcd') {
    if (v4 && !subnet) throw invalidConfig('subnet is required unless it is leased from etcd');
    if (v6 && !v6.subnet) throw invalidConfig('subnet6 is required unless it is leased from etcd');
  }
  const device = c.device ?? `tscni.${c.vni}`;
  if (!IFNAME.test(device)) throw invalidConfig(`device name ${device} is too long; set "device"`);
  // passed to bridge as it is (NetworkPolicy in-process): refused here, before the node side acts
  const policy = (c as Record<string, unknown>).policy;
  if (policy !== undefined && policy !== null) {
    if (typeof policy !== 'object' || Array.isArray(policy)) throw invalidConfig('policy must be an object');
    resolvePolicy(policy as Record<string, unknown>, c);
  }
  return { ...c, network, subnet, subnetLen, network6: v6?.network, subnet6: v6?.subnet, subnetLen6: v6?.subnetLen ?? c.subnetLen6, localIP, device, source };
}

/**
 * One family's cluster network, node subnet and subnet length, checked together; undefined when the
 * family's network is not configured (its subnet is then refused).
 */
function clusterFamily(family: 4 | 6, given: { network: string | undefined; subnet: string | undefined; subnetLen: number | undefined }, keys: [string, string, string]): { network: Cidr; subnet: Cidr | undefined; subnetLen: number } | undefined {
  const [netKey, subnetKey, lenKey] = keys;
  const example = family === 4 ? '10.244.0.0/16' : 'fd00:10:244::/56';
  if (given.network === undefined) {
    if (given.subnet !== undefined) throw invalidConfig(`${subnetKey} needs ${netKey}`);
    return undefined;
  }
  const network = parseSubnet(given.network);
  if (!network || network.ip.family !== family) throw invalidConfig(`invalid ${netKey} ${JSON.stringify(given.network)}`, `${netKey} must be an IPv${family} CIDR with no host bits, e.g. ${example}`);
  const subnetLen = given.subnetLen ?? (family === 4 ? Math.max(24, network.prefix + 1) : 64);
  if (subnetLen <= network.prefix) throw invalidConfig(`${lenKey} ${subnetLen} must be longer than the ${netKey} prefix /${network.prefix}`);
  if (given.subnet === undefined) return { network, subnet: undefined, subnetLen };
  const subnet = parseSubnet(given.subnet);
  if (!subnet || subnet.ip.family !== family) throw invalidConfig(`invalid ${subnetKey} ${JSON.stringify(given.subnet)}`, `${subnetKey} must be an IPv${family} CIDR with no host bits`);
  if (subnet.prefix <= network.prefix || !containsCidr(network, subnet)) throw invalidConfig(`${subnetKey} ${given.subnet} is not inside ${netKey} ${given.network}`);
  if (subnet.prefix > (family === 4 ? 30 : 124)) throw invalidConfig(`${subnetKey} ${given.subnet} is too small for pods`);
  return { network, subnet, subnetLen };
}
