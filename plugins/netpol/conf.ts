import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import { parseConf, stateDirOf } from '../../lib/cni/conf.ts';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { formatCidr, network, parseCidr } from '../../lib/net/ip.ts';

/**
 * The netpol plugin's config (also read by `tscni policy`), one resolver for every verb:
 *
 *   { "type": "netpol",
 *     "objects": "/etc/tscni/objects",       directory of Kubernetes manifests (required, absolute)
 *     "nodeName": "node-1",                  which pods are local (default: the host name)
 *     "stateDir": "/run/tscni/netpol",       applied ruleset, index, registrations (absolute, no "..")
 *     "podSubnets": ["10.1.0.0/24"] }        this node's pod subnets, guarded from the first pod on
 *
 * plus `args.cni.labels` (CNI conventions: `[{"key","value"}]`), the pod's labels for runtimes
 * without Kubernetes objects. Everything here reaches a path, argv or nft text only after this.
 */
export const NetpolConf = lazy(() =>
  z.looseObject({
    name: z.string(),
    objects: z.string(),
    nodeName: z.optional(z.string()),
    stateDir: z.optional(z.string()),
    podSubnets: z.optional(z.array(z.string())),
    args: z.optional(z.nullable(z.looseObject({ cni: z.optional(z.nullable(z.looseObject({ labels: z.optional(z.array(z.looseObject({ key: z.string(), value: z.string() }))) }))) }))),
    'cni.dev/valid-attachments': z.optional(z.array(z.looseObject({ containerID: z.string(), ifname: z.string() }))),
  }),
);
type NetpolConfRaw = z.infer<ReturnType<typeof NetpolConf>>;

export interface Netpol {
  network: string;
  objects: string;
  nodeName: string;
  stateDir: string;
  /** Canonical, host bits cleared. */
  podSubnets: string[];
  /** From args.cni.labels; undefined when none were given. */
  argLabels: Record<string, string> | undefined;
  validAttachments: { containerID: string; ifname: string }[] | undefined;
}

export const DEFAULT_STATE_DIR = '/run/tscni/netpol';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_LABELS = 64;

export function resolveNetpol(raw: unknown): Netpol {
  const conf: NetpolConfRaw = parseConf(NetpolConf(), raw);
  const objects = absolutePath('objects', conf.objects);
  const nodeName = conf.nodeName ?? hostname();
  if (nodeName.length > 253 || !DNS_SUBDOMAIN.test(nodeName)) throw invalidConfig(`invalid nodeName ${JSON.stringify(nodeName)}`, 'must be a DNS subdomain (lowercase), as a Node name is');
  const podSubnets = (conf.podSubnets ?? []).map((text, i) => {
    const c = parseCidr(text);
    if (!c) throw invalidConfig(`invalid podSubnets[${i}] ${JSON.stringify(text)}`, 'must be a CIDR');
    return formatCidr({ ...c, ip: network(c) });
  });
  const labels = conf.args?.cni?.labels;
  if (labels && labels.length > MAX_LABELS) throw invalidConfig(`args.cni.labels: more than ${MAX_LABELS} labels`);
  for (const l of labels ?? []) {
    if (l.key === '' || l.key.length > 317 || l.value.length > 63) throw invalidConfig(`args.cni.labels: invalid label ${JSON.stringify(l.key)}`, 'key 1-317 characters, value at most 63');
  }
  return {
    network: conf.name,
    objects,
    nodeName,
    stateDir: stateDirOf(conf.stateDir, DEFAULT_STATE_DIR),
    podSubnets,
    argLabels: labels ? Object.fromEntries(labels.map((l) => [l.key, l.value])) : undefined,
    validAttachments: conf['cni.dev/valid-attachments'],
  };
}

/** uname's nodename, as os.hostname() gives it, without loading node:os into bridge's start-up (it resolves `policy` with this). */
const hostname = (): string => readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();

function absolutePath(key: string, path: string): string {
  if (!path.startsWith('/') || path.split('/').includes('..')) throw invalidConfig(`invalid ${key} ${JSON.stringify(path)}`, 'must be an absolute path without ".."');
  return path;
}
