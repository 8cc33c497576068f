import * as z from 'zod/mini';
import { issueMessage } from '../cni/conf.ts';
import { lazy } from '../cni/lazy.ts';
import { isKnownProtocol, type Protocol } from './protocol.ts';
import { containsCidr, formatCidr, formatIp, network, parseCidr, parseIp, type Cidr, type Family } from '../net/ip.ts';

/**
 * The Kubernetes objects NetworkPolicy enforcement reads — Namespace, Pod, NetworkPolicy
 * (networking.k8s.io/v1) — validated as the API server would and defaulted as it does. Pure.
 *
 * Public surface:
 *   validateObject(raw): ObjectVerdict      one manifest in, `{ok, object, warnings}` or `{ok:false, reason}`
 *   types Namespace, Pod, NetworkPolicy, ClusterObject, LabelSelector, Labels, PolicyRule, PolicyPeer,
 *         PolicyPort, ContainerPort, Protocol, Direction
 *   isKnownProtocol(p), Protocol            re-exported from protocol.ts
 *
 * Every name or string of an accepted object that later reaches nft text is from a safe alphabet by
 * construction: namespaces are DNS labels, names DNS subdomains, port names IANA_SVC_NAMEs, addresses
 * canonical. Label keys and values never reach nft text (sets hold addresses, not labels).
 */

export type Labels = Readonly<Record<string, string>>;
export type { Protocol };
export { isKnownProtocol };
export type Direction = 'ingress' | 'egress';
export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelector {
  readonly matchLabels: Labels;
  readonly matchExpressions: readonly { readonly key: string; readonly operator: SelectorOperator; readonly values: readonly string[] }[];
}

export interface Namespace {
  readonly kind: 'Namespace';
  readonly name: string;
  /** Includes the automatic `kubernetes.io/metadata.name: <name>`. */
  readonly labels: Labels;
}

export interface ContainerPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface Pod {
  readonly kind: 'Pod';
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly nodeName?: string;
  readonly hostNetwork: boolean;
  readonly ports: readonly ContainerPort[];
  /** Canonical text (`status.podIPs`), at most one per family. */
  readonly ips: readonly string[];
}

export interface PolicyPort {
  /** Defaulted to TCP; anything but TCP/UDP/SCTP is kept (with a warning) and matches nothing. */
  readonly protocol: string;
  /** A number (1–65535), a container port name, or absent (every port of the protocol). */
  readonly port?: number | string;
  /** Only with a numeric `port`, and ≥ it. */
  readonly endPort?: number;
}

export interface PolicyPeer {
  /** Absent = "not given" (distinct from `{}`, which selects everything). */
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  /** Canonical CIDR text (host bits cleared); `except` entries inside it, same family. */
  readonly ipBlock?: { readonly cidr: string; readonly except: readonly string[] };
}

/** One `ingress[]` or `egress[]` entry: `peers` is `from` or `to`; an empty list means "all". */
export interface PolicyRule {
  readonly peers: readonly PolicyPeer[];
  readonly ports: readonly PolicyPort[];
}

export interface NetworkPolicy {
  readonly kind: 'NetworkPolicy';
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: LabelSelector;
  /** Defaulted: Ingress, plus Egress when `egress` rules are present. */
  readonly policyTypes: readonly Direction[];
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
}

export type ClusterObject = Namespace | Pod | NetworkPolicy;

export type ObjectVerdict = { ok: true; object: ClusterObject; warnings: string[] } | { ok: false; reason: string };

/** Size guards: a hostile object is refused instead of blowing up sets and rule counts. */
export const LIMITS = { labels: 64, expressions: 64, values: 64, rules: 128, peers: 128, ports: 128, except: 64, containers: 64, containerPorts: 256 } as const;

// ---- structural schemas (loose objects: the API adds fields we do not read) ----

const nullish = <T extends z.core.$ZodType>(s: T) => z.optional(z.nullable(s));
const stringMap = lazy(() => nullish(z.record(z.string(), z.string())));
const Selector = lazy(() =>
  z.looseObject({
    matchLabels: stringMap(),
    matchExpressions: nullish(z.array(z.looseObject({ key: z.string(), operator: z.string(), values: nullish(z.array(z.string())) }))),
  }),
);
const Metadata = lazy(() => z.looseObject({ name: z.string(), namespace: nullish(z.string()), labels: stringMap() }));
const Port = lazy(() => z.looseObject({ protocol: nullish(z.string()), port: nullish(z.union([z.number(), z.string()])), endPort: nullish(z.number()) }));
const Peer = lazy(() => z.looseObject({ podSelector: nullish(Selector()), namespaceSelector: nullish(Selector()), ipBlock: nullish(z.looseObject({ cidr: z.string(), except: nullish(z.array(z.string())) })) }));
const Rule = (peers: 'from' | 'to') => z.looseObject({ [peers]: nullish(z.array(Peer())), ports: nullish(z.array(Port())) });

const NamespaceShape = lazy(() => z.looseObject({ metadata: Metadata() }));
const PodShape = lazy(() =>
  z.looseObject({
    metadata: Metadata(),
    spec: nullish(
      z.looseObject({
        nodeName: nullish(z.string()),
        hostNetwork: nullish(z.boolean()),
        containers: nullish(z.array(z.looseObject({ ports: nullish(z.array(z.looseObject({ name: nullish(z.string()), containerPort: z.number(), protocol: nullish(z.string()) }))) }))),
      }),
    ),
    status: nullish(z.looseObject({ podIPs: nullish(z.array(z.looseObject({ ip: z.string() }))) })),
  }),
);
const PolicyShape = lazy(() =>
  z.looseObject({
    metadata: Metadata(),
    spec: z.looseObject({
      podSelector: Selector(),
      policyTypes: nullish(z.array(z.string())),
      ingress: nullish(z.array(Rule('from'))),
      egress: nullish(z.array(Rule('to'))),
    }),
  }),
);

// ---- API-server validation rules ----

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

class Invalid extends Error {}
const fail = (path: string, problem: string): never => {
  throw new Invalid(`${path}: ${problem}`);
};
const show = (v: unknown) => JSON.stringify(v);

function checkDnsLabel(path: string, v: string): string {
  if (v.length > 63 || !DNS_LABEL.test(v)) fail(path, `${show(v)} is not a DNS label`);
  return v;
}
function checkDnsSubdomain(path: string, v: string): string {
  if (v.length > 253 || !DNS_SUBDOMAIN.test(v)) fail(path, `${show(v)} is not a DNS subdomain`);
  return v;
}
function checkLabelKey(path: string, key: string): void {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) fail(path, `label key ${show(key)}: prefix is not a DNS subdomain`);
  if (name.length > 63 || !LABEL_NAME.test(name)) fail(path, `label key ${show(key)} is not a qualified name`);
}
function checkLabelValue(path: string, value: string): void {
  if (value.length > 63 || (value !== '' && !LABEL_NAME.test(value))) fail(path, `label value ${show(value)} is not valid`);
}
function checkLabels(path: string, labels: Record<string, string> | null | undefined): Labels {
  const entries = Object.entries(labels ?? {});
  if (entries.length > LIMITS.labels) fail(path, `${entries.length} labels (at most ${LIMITS.labels})`);
  for (const [k, v] of entries) {
    checkLabelKey(path, k);
    checkLabelValue(`${path}.${k}`, v);
  }
  return Object.fromEntries(entries);
}

type RawSelector = z.infer<ReturnType<typeof Selector>>;
function checkSelector(path: string, raw: RawSelector): LabelSelector {
  const matchLabels = checkLabels(`${path}.matchLabels`, raw.matchLabels);
  const exprs = raw.matchExpressions ?? [];
  if (exprs.length > LIMITS.expressions) fail(`${path}.matchExpressions`, `${exprs.length} expressions (at most ${LIMITS.expressions})`);
  const matchExpressions = exprs.map((e, i) => {
    const at = `${path}.matchExpressions[${i}]`;
    checkLabelKey(`${at}.key`, e.key);
    const values = e.values ?? [];
    if (values.length > LIMITS.values) fail(`${at}.values`, `${values.length} values (at most ${LIMITS.values})`);
    if (e.operator === 'In' || e.operator === 'NotIn') {
      if (values.length === 0) fail(`${at}.values`, `must be non-empty for operator ${e.operator}`);
    } else if (e.operator === 'Exists' || e.operator === 'DoesNotExist') {
      if (values.length > 0) fail(`${at}.values`, `must be empty for operator ${e.operator}`);
    } else {
      fail(`${at}.operator`, `${show(e.operator)} is not a valid selector operator (In, NotIn, Exists, DoesNotExist)`);
    }
    values.forEach((v, j) => checkLabelValue(`${at}.values[${j}]`, v));
    return { key: e.key, operator: e.operator as SelectorOperator, values };
  });
  return { matchLabels, matchExpressions };
}

function checkCidr(path: string, text: string): Cidr {
  return parseCidr(text) ?? fail(path, `${show(text)} is not a CIDR`);
}
const canonicalCidr = (c: Cidr): string => formatCidr({ ip: network(c), prefix: c.prefix });

type RawPeer = z.infer<ReturnType<typeof Peer>>;
function checkPeer(path: string, raw: RawPeer): PolicyPeer {
  const given = [raw.podSelector, raw.namespaceSelector, raw.ipBlock].filter((v) => v != null).length;
  if (given === 0) fail(path, 'must specify a peer (podSelector, namespaceSelector or ipBlock)');
  if (raw.ipBlock) {
    if (given > 1) fail(path, 'ipBlock may not be combined with podSelector or namespaceSelector');
    const cidr = checkCidr(`${path}.ipBlock.cidr`, raw.ipBlock.cidr);
    const except = raw.ipBlock.except ?? [];
    if (except.length > LIMITS.except) fail(`${path}.ipBlock.except`, `${except.length} entries (at most ${LIMITS.except})`);
    const exceptCanonical = except.map((text, i) => {
      const at = `${path}.ipBlock.except[${i}]`;
      const e = checkCidr(at, text);
      if (e.ip.family !== cidr.ip.family) fail(at, `${show(text)} is not of the family of cidr ${show(raw.ipBlock!.cidr)}`);
      if (!(e.prefix > cidr.prefix && containsCidr(cidr, e))) fail(at, `${show(text)} must be a strict subset of cidr ${show(raw.ipBlock!.cidr)}`);
      return canonicalCidr(e);
    });
    return { ipBlock: { cidr: canonicalCidr(cidr), except: exceptCanonical } };
  }
  return {
    ...(raw.podSelector ? { podSelector: checkSelector(`${path}.podSelector`, raw.podSelector) } : {}),
    ...(raw.namespaceSelector ? { namespaceSelector: checkSelector(`${path}.namespaceSelector`, raw.namespaceSelector) } : {}),
  };
}

type RawPort = z.infer<ReturnType<typeof Port>>;
function checkPolicyPort(path: string, raw: RawPort, warnings: string[]): PolicyPort {
  const protocol = raw.protocol ?? 'TCP';
  if (!isKnownProtocol(protocol)) warnings.push(`${path}.protocol: ${show(protocol)} is not TCP, UDP or SCTP; this entry allows nothing`);
  const port = raw.port ?? undefined;
  if (typeof port === 'number') checkPortNumber(`${path}.port`, port);
  if (typeof port === 'string') checkPortName(`${path}.port`, port);
  const endPort = raw.endPort ?? undefined;
  if (endPort !== undefined) {
    if (typeof port !== 'number') fail(`${path}.endPort`, 'may only be given with a numeric port');
    checkPortNumber(`${path}.endPort`, endPort);
    if (endPort < (port as number)) fail(`${path}.endPort`, `${endPort} is less than port ${port}`);
  }
  return { protocol, ...(port !== undefined ? { port } : {}), ...(endPort !== undefined ? { endPort } : {}) };
}
function checkPortNumber(path: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(path, `${n} is not a port number (1-65535)`);
}
function checkPortName(path: string, name: string): void {
  if (name.length > 15 || !IANA_SVC_NAME.test(name) || name.includes('--') || !/[a-z]/.test(name)) fail(path, `${show(name)} is not a port name (IANA_SVC_NAME)`);
}

type RawRule = { ports?: RawPort[] | null } & Record<string, unknown>;
function checkRule(path: string, raw: RawRule, peersKey: 'from' | 'to', warnings: string[]): PolicyRule {
  const peers = (raw[peersKey] as RawPeer[] | null | undefined) ?? [];
  const ports = raw.ports ?? [];
  if (peers.length > LIMITS.peers) fail(`${path}.${peersKey}`, `${peers.length} peers (at most ${LIMITS.peers})`);
  if (ports.length > LIMITS.ports) fail(`${path}.ports`, `${ports.length} ports (at most ${LIMITS.ports})`);
  return {
    peers: peers.map((p, i) => checkPeer(`${path}.${peersKey}[${i}]`, p)),
    ports: ports.map((p, i) => checkPolicyPort(`${path}.ports[${i}]`, p, warnings)),
  };
}

function namespaceOf(path: string, ns: string | null | undefined): string {
  return checkDnsLabel(path, ns ?? 'default');
}

function toNamespace(raw: z.infer<ReturnType<typeof NamespaceShape>>): Namespace {
  const name = checkDnsLabel('metadata.name', raw.metadata.name);
  const labels = checkLabels('metadata.labels', raw.metadata.labels);
  return { kind: 'Namespace', name, labels: { ...labels, 'kubernetes.io/metadata.name': name } };
}

function toPod(raw: z.infer<ReturnType<typeof PodShape>>): Pod {
  const namespace = namespaceOf('metadata.namespace', raw.metadata.namespace);
  const name = checkDnsSubdomain('metadata.name', raw.metadata.name);
  const labels = checkLabels('metadata.labels', raw.metadata.labels);
  const containers = raw.spec?.containers ?? [];
  if (containers.length > LIMITS.containers) fail('spec.containers', `${containers.length} containers (at most ${LIMITS.containers})`);
  const ports: ContainerPort[] = [];
  containers.forEach((c, i) =>
    (c.ports ?? []).forEach((p, j) => {
      const at = `spec.containers[${i}].ports[${j}]`;
      checkPortNumber(`${at}.containerPort`, p.containerPort);
      const protocol = p.protocol ?? 'TCP';
      if (!isKnownProtocol(protocol)) return fail(`${at}.protocol`, `${show(protocol)} is not TCP, UDP or SCTP`);
      if (p.name != null) checkPortName(`${at}.name`, p.name);
      ports.push({ ...(p.name != null ? { name: p.name } : {}), port: p.containerPort, protocol });
    }),
  );
  if (ports.length > LIMITS.containerPorts) fail('spec.containers', `${ports.length} container ports (at most ${LIMITS.containerPorts})`);
  const podIPs = raw.status?.podIPs ?? [];
  const families = new Set<Family>();
  const ips = podIPs.map((p, i) => {
    const ip = parseIp(p.ip) ?? fail(`status.podIPs[${i}].ip`, `${show(p.ip)} is not an IP address`);
    if (families.has(ip.family)) fail(`status.podIPs[${i}].ip`, `a second IPv${ip.family} address`);
    families.add(ip.family);
    return formatIp(ip);
  });
  const nodeName = raw.spec?.nodeName ?? undefined;
  return { kind: 'Pod', namespace, name, labels, ...(nodeName ? { nodeName } : {}), hostNetwork: raw.spec?.hostNetwork === true, ports, ips };
}

function toPolicy(raw: z.infer<ReturnType<typeof PolicyShape>>, warnings: string[]): NetworkPolicy {
  const namespace = namespaceOf('metadata.namespace', raw.metadata.namespace);
  const name = checkDnsSubdomain('metadata.name', raw.metadata.name);
  const spec = raw.spec;
  for (const [key, list] of [['spec.ingress', spec.ingress], ['spec.egress', spec.egress]] as const) {
    if ((list?.length ?? 0) > LIMITS.rules) fail(key, `${list!.length} rules (at most ${LIMITS.rules})`);
  }
  const podSelector = checkSelector('spec.podSelector', spec.podSelector);
  const ingress = (spec.ingress ?? []).map((r, i) => checkRule(`spec.ingress[${i}]`, r as RawRule, 'from', warnings));
  const egress = (spec.egress ?? []).map((r, i) => checkRule(`spec.egress[${i}]`, r as RawRule, 'to', warnings));
  let policyTypes: Direction[];
  if (spec.policyTypes == null || spec.policyTypes.length === 0) {
    policyTypes = spec.egress != null && spec.egress.length > 0 ? ['ingress', 'egress'] : ['ingress'];
  } else {
    const seen = new Set<Direction>();
    spec.policyTypes.forEach((t, i) => {
      if (t !== 'Ingress' && t !== 'Egress') fail(`spec.policyTypes[${i}]`, `${show(t)} is not Ingress or Egress`);
      seen.add(t === 'Ingress' ? 'ingress' : 'egress');
    });
    policyTypes = (['ingress', 'egress'] as const).filter((d) => seen.has(d));
  }
  return { kind: 'NetworkPolicy', namespace, name, podSelector, policyTypes, ingress, egress };
}

const KINDS = {
  Namespace: { apiVersion: 'v1', shape: NamespaceShape, build: (raw: unknown) => toNamespace(raw as never) },
  Pod: { apiVersion: 'v1', shape: PodShape, build: (raw: unknown) => toPod(raw as never) },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', shape: PolicyShape, build: (raw: unknown, w: string[]) => toPolicy(raw as never, w) },
} as const;

/** A short name for log lines: `networkpolicy x/foo`, `pod x/a`, `namespace x`. */
function describe(raw: Record<string, unknown>): string {
  const meta = (raw.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  const kind = typeof raw.kind === 'string' ? raw.kind.toLowerCase() : 'object';
  const name = typeof meta.name === 'string' ? meta.name : '?';
  if (kind === 'namespace') return `namespace ${name}`;
  return `${kind} ${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${name}`;
}

/**
 * Validates and defaults one object as the API server would: a readable reason naming the object and
 * the path (`networkpolicy x/foo: spec.ingress[0].from[1].ipBlock.cidr: "10.0.0/8" is not a CIDR`),
 * or the object plus warnings (unknown protocols). Objects of other kinds are refused too, so a
 * caller can log them; one bad object never affects the others.
 */
export function validateObject(raw: unknown): ObjectVerdict {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'object: not a JSON object' };
  const obj = raw as Record<string, unknown>;
  const who = describe(obj);
  if (typeof obj.kind !== 'string' || !Object.hasOwn(KINDS, obj.kind)) return { ok: false, reason: `${who}: kind ${show(obj.kind)} is not Namespace, Pod or NetworkPolicy` };
  const kind = KINDS[obj.kind as keyof typeof KINDS];
  if (obj.apiVersion !== kind.apiVersion) return { ok: false, reason: `${who}: apiVersion ${show(obj.apiVersion)} is not ${kind.apiVersion}` };
  const parsed = z.safeParse(kind.shape(), raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${who}: ${issue.path.join('.') || '(root)'}: ${issueMessage(issue, raw)}` };
  }
  const warnings: string[] = [];
  try {
    const object = kind.build(parsed.data, warnings);
    return { ok: true, object, warnings: warnings.map((w) => `${who}: ${w}`) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: `${who}: ${err.message}` };
    throw err;
  }
}
