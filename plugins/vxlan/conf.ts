import * as z from 'zod/mini';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { parseConf } from '../../lib/cni/conf.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { canonicalIp, containsCidr, parseSubnet, type Cidr } from '../../lib/net/ip.ts';
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
    subnet: z.string(),
    ip: z.string(),
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
    /** The cluster network every node's pod subnet comes from. */
    network: z.string(),
    /** This node's pod subnet; leased from etcd when absent. */
    subnet: z.optional(z.string()),
    subnetLen: z.optional(z.number().check(z.int(), z.minimum(8), z.maximum(30))),
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

export const DEFAULT_PEERS_FILE = '/etc/tscni/vxlan-peers.json';

export type PeerSource = { kind: 'inline'; entries: unknown[] } | { kind: 'file'; path: string } | { kind: 'etcd'; etcd: EtcdConf };

/** The parsed config with its derived values: everything a verb decides from, before acting. */
export interface Conf extends Omit<RawConf, 'network' | 'subnet' | 'localIP'> {
  network: Cidr;
  subnet: Cidr | undefined;
  subnetLen: number;
  localIP: string | undefined;
  device: string;
  source: PeerSource;
}

export function parseVxlanConf(raw: unknown): Conf {
  const c = parseConf(VxlanConf(), raw);
  const network = parseSubnet(c.network);
  if (!network || network.ip.family !== 4) throw invalidConfig(`invalid network ${JSON.stringify(c.network)}`, 'network must be an IPv4 CIDR with no host bits, e.g. 10.244.0.0/16');
  const subnetLen = c.subnetLen ?? Math.max(24, network.prefix + 1);
  if (subnetLen <= network.prefix) throw invalidConfig(`subnetLen ${subnetLen} must be longer than the network prefix /${network.prefix}`);
  let subnet: Cidr | undefined;
  if (c.subnet !== undefined) {
    subnet = parseSubnet(c.subnet);
    if (!subnet || subnet.ip.family !== 4) throw invalidConfig(`invalid subnet ${JSON.stringify(c.subnet)}`, 'subnet must be an IPv4 CIDR with no host bits');
    if (subnet.prefix <= network.prefix || !containsCidr(network, subnet)) {
      throw invalidConfig(`subnet ${c.subnet} is not inside network ${c.network}`);
    }
    if (subnet.prefix > 30) throw invalidConfig(`subnet ${c.subnet} is too small for pods`);
  }
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
  if (!subnet && source.kind !== 'etcd') throw invalidConfig('subnet is required unless it is leased from etcd');
  const device = c.device ?? `tscni.${c.vni}`;
  if (!IFNAME.test(device)) throw invalidConfig(`device name ${device} is too long; set "device"`);
  // passed to bridge as it is (NetworkPolicy in-process): refused here, before the node side acts
  const policy = (c as Record<string, unknown>).policy;
  if (policy !== undefined && policy !== null) {
    if (typeof policy !== 'object' || Array.isArray(policy)) throw invalidConfig('policy must be an object');
    resolvePolicy(policy as Record<string, unknown>, c);
  }
  return { ...c, network, subnet, subnetLen, localIP, device, source };
}
