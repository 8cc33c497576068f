import { describe, expect, it } from 'vitest';
import { loadCluster } from '../../lib/netpol/cluster.ts';
import { validateObject, type NetworkPolicy } from '../../lib/netpol/objects.ts';
import { matchesSelector } from '../../lib/netpol/selector.ts';

const np = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { namespace: 'x', name: 'p' }) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec });
const reason = (raw: unknown) => {
  const v = validateObject(raw);
  if (v.ok) throw new Error('accepted');
  return v.reason;
};
const accepted = (raw: unknown) => {
  const v = validateObject(raw);
  if (!v.ok) throw new Error(v.reason);
  return v;
};
const ingressPort = (port: Record<string, unknown>) => np({ podSelector: {}, ingress: [{ ports: [port] }] });

describe('validateObject refuses what the API server refuses', () => {
  it('a selector operator that does not exist', () => {
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'pod', operator: 'Equals', values: ['a'] }] } }))).toBe(
      'networkpolicy x/p: spec.podSelector.matchExpressions[0].operator: "Equals" is not a valid selector operator (In, NotIn, Exists, DoesNotExist)',
    );
  });
  it('In / NotIn without values, Exists / DoesNotExist with values', () => {
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: [] }] } }))).toMatch(/matchExpressions\[0\]\.values: must be non-empty for operator In$/);
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn' }] } }))).toMatch(/must be non-empty for operator NotIn$/);
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists', values: ['a'] }] } }))).toMatch(/must be empty for operator Exists$/);
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'pod', operator: 'DoesNotExist', values: ['a'] }] } }))).toMatch(/must be empty for operator DoesNotExist$/);
  });
  it('a bad label key or value, in an object or a selector', () => {
    expect(reason(np({ podSelector: { matchLabels: { 'bad key': 'a' } } }))).toMatch(/spec\.podSelector\.matchLabels: label key "bad key" is not a qualified name$/);
    expect(reason(np({ podSelector: { matchLabels: { 'Example.com/app': 'a' } } }))).toMatch(/prefix is not a DNS subdomain$/);
    expect(reason(np({ podSelector: { matchLabels: { app: '-a' } } }))).toMatch(/matchLabels\.app: label value "-a" is not valid$/);
    expect(reason(np({ podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['x'.repeat(64)] }] } }))).toMatch(/values\[0\]: label value "x{64}" is not valid$/);
    expect(reason({ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'x', name: 'a', labels: { 'a/b/c': 'v' } } })).toMatch(/^pod x\/a: metadata\.labels: label key "a\/b\/c"/);
  });
  it('a huge label set', () => {
    const labels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(reason({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels } })).toBe('namespace x: metadata.labels: 65 labels (at most 64)');
  });
  it('a CIDR that does not parse', () => {
    expect(reason(np({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }, { ipBlock: { cidr: '10.0.0/8' } }] }] }))).toBe('networkpolicy x/p: spec.ingress[0].from[1].ipBlock.cidr: "10.0.0/8" is not a CIDR');
  });
  it('except outside cidr, or of the other family', () => {
    const block = (except: string[]) => np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except } }] }] });
    expect(reason(block(['10.1.0.0/24']))).toMatch(/spec\.egress\[0\]\.to\[0\]\.ipBlock\.except\[0\]: "10\.1\.0\.0\/24" must be a strict subset of cidr "10\.0\.0\.0\/16"$/);
    expect(reason(block(['10.0.0.0/16']))).toMatch(/must be a strict subset/);
    expect(reason(block(['fd00::/64']))).toMatch(/except\[0\]: "fd00::\/64" is not of the family of cidr "10\.0\.0\.0\/16"$/);
  });
  it('ipBlock combined with a selector, and an empty peer', () => {
    expect(reason(np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }))).toMatch(/from\[0\]: ipBlock may not be combined/);
    expect(reason(np({ podSelector: {}, ingress: [{ from: [{}] }] }))).toMatch(/from\[0\]: must specify a peer/);
  });
  it('port 0, port 65536 and a bad port name', () => {
    expect(reason(ingressPort({ port: 0 }))).toBe('networkpolicy x/p: spec.ingress[0].ports[0].port: 0 is not a port number (1-65535)');
    expect(reason(ingressPort({ port: 65536 }))).toMatch(/ports\[0\]\.port: 65536 is not a port number/);
    expect(reason(ingressPort({ port: 'Serve_80' }))).toMatch(/ports\[0\]\.port: "Serve_80" is not a port name \(IANA_SVC_NAME\)$/);
    expect(reason(ingressPort({ port: 'serve-80-tcp-too-long' }))).toMatch(/is not a port name/);
    expect(reason(ingressPort({ port: '8080' }))).toMatch(/is not a port name/);
  });
  it('endPort below port, and endPort with a named port', () => {
    expect(reason(ingressPort({ port: 90, endPort: 80 }))).toMatch(/ports\[0\]\.endPort: 80 is less than port 90$/);
    expect(reason(ingressPort({ port: 'serve-80-tcp', endPort: 90 }))).toMatch(/ports\[0\]\.endPort: may only be given with a numeric port$/);
    expect(reason(ingressPort({ endPort: 90 }))).toMatch(/may only be given with a numeric port$/);
  });
  it('an unknown policyType', () => {
    expect(reason(np({ podSelector: {}, policyTypes: ['Ingress', 'Sideways'] }))).toBe('networkpolicy x/p: spec.policyTypes[1]: "Sideways" is not Ingress or Egress');
  });
  it('a bad name or namespace, a wrong kind or apiVersion, a bad shape', () => {
    expect(reason(np({ podSelector: {} }, { namespace: 'X_1', name: 'p' }))).toMatch(/metadata\.namespace: "X_1" is not a DNS label$/);
    expect(reason(np({ podSelector: {} }, { namespace: 'x', name: 'p;drop' }))).toMatch(/metadata\.name: "p;drop" is not a DNS subdomain$/);
    expect(reason({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } })).toMatch(/kind "Service" is not/);
    expect(reason({ apiVersion: 'networking.k8s.io/v1beta1', kind: 'NetworkPolicy', metadata: { name: 'p' }, spec: { podSelector: {} } })).toMatch(/apiVersion "networking.k8s.io\/v1beta1" is not networking.k8s.io\/v1$/);
    expect(reason(np({ ingress: [] }))).toMatch(/^networkpolicy x\/p: spec\.podSelector: /);
  });
  it('pod addresses that are not addresses, or two of one family', () => {
    const pod = (ips: string[]) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'x', name: 'a' }, status: { podIPs: ips.map((ip) => ({ ip })) } });
    expect(reason(pod(['10.0.0.300']))).toMatch(/status\.podIPs\[0\]\.ip: "10\.0\.0\.300" is not an IP address$/);
    expect(reason(pod(['10.0.0.1', '10.0.0.2']))).toMatch(/status\.podIPs\[1\]\.ip: a second IPv4 address$/);
    expect(accepted(pod(['10.0.0.1', 'FD00:0::1'])).object).toMatchObject({ ips: ['10.0.0.1', 'fd00::1'] });
  });
});

describe('validateObject defaults as the API server does', () => {
  const policyOf = (raw: unknown) => accepted(raw).object as NetworkPolicy;
  it('policyTypes: Ingress, plus Egress when egress rules are present', () => {
    expect(policyOf(np({ podSelector: {} })).policyTypes).toEqual(['ingress']);
    expect(policyOf(np({ podSelector: {}, egress: [] })).policyTypes).toEqual(['ingress']);
    expect(policyOf(np({ podSelector: {}, egress: [{}] })).policyTypes).toEqual(['ingress', 'egress']);
    expect(policyOf(np({ podSelector: {}, policyTypes: ['Egress'] })).policyTypes).toEqual(['egress']);
  });
  it('port protocol: TCP; nil and [] rule lists the same', () => {
    const p = policyOf(np({ podSelector: {}, ingress: [{ from: null, ports: [{ port: 80 }] }, { from: [] }] }));
    expect(p.ingress).toEqual([
      { peers: [], ports: [{ protocol: 'TCP', port: 80 }] },
      { peers: [], ports: [] },
    ]);
  });
  it('namespace: the kubernetes.io/metadata.name label; namespace of a namespaced object: default', () => {
    expect(accepted({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { team: 'a' } } }).object).toEqual({ kind: 'Namespace', name: 'x', labels: { team: 'a', 'kubernetes.io/metadata.name': 'x' } });
    expect(accepted(np({ podSelector: {} }, { name: 'p' })).object).toMatchObject({ namespace: 'default' });
  });
  it('ipBlock CIDRs in canonical form', () => {
    const p = policyOf(np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.1.2.3/16', except: ['10.1.2.0/24'] } }] }] }));
    expect(p.egress[0]!.peers[0]!.ipBlock).toEqual({ cidr: '10.1.0.0/16', except: ['10.1.2.0/24'] });
  });
  it('an unknown protocol is kept, with a warning', () => {
    const v = accepted(ingressPort({ protocol: 'ICMP', port: 80 }));
    expect((v.object as NetworkPolicy).ingress[0]!.ports).toEqual([{ protocol: 'ICMP', port: 80 }]);
    expect(v.warnings).toEqual(['networkpolicy x/p: spec.ingress[0].ports[0].protocol: "ICMP" is not TCP, UDP or SCTP; this entry allows nothing']);
  });
});

describe('loadCluster', () => {
  it('refuses a bad object alone and keeps the others', () => {
    const { cluster, rejected } = loadCluster([np({ podSelector: {} }, { namespace: 'x', name: 'good' }), np({ podSelector: {}, policyTypes: ['Bad'] }, { namespace: 'x', name: 'bad' }), 'not an object']);
    expect([...cluster.policies.keys()]).toEqual(['x/good']);
    expect(rejected).toEqual(['networkpolicy x/bad: spec.policyTypes[0]: "Bad" is not Ingress or Egress', 'object: not a JSON object']);
  });
  it('refuses a second object of one kind and name; the first one read stays', () => {
    const first = np({ podSelector: {} }, { namespace: 'x', name: 'p' });
    const wider = np({ podSelector: {}, ingress: [{}] }, { namespace: 'x', name: 'p' });
    const { cluster, rejected } = loadCluster([first, wider, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'p' } }]);
    expect(cluster.policies.get('x/p')?.ingress).toEqual([]);
    expect(cluster.namespaces.has('p')).toBe(true); // another kind, same name: no duplicate
    expect(rejected).toEqual(['networkpolicy x/p: duplicate name: a NetworkPolicy of this name was read before; that one is kept']);
  });
});

describe('matchesSelector', () => {
  const labels = { pod: 'a', tier: 'web' };
  const m = (selector: object) => matchesSelector({ matchLabels: {}, matchExpressions: [], ...selector }, labels);
  const e = (operator: string, key: string, values: string[] = []) => m({ matchExpressions: [{ key, operator, values }] });
  it('matchLabels: every pair', () => {
    expect(m({ matchLabels: { pod: 'a' } })).toBe(true);
    expect(m({ matchLabels: { pod: 'a', tier: 'db' } })).toBe(false);
    expect(m({ matchLabels: { other: '' } })).toBe(false);
  });
  it('In', () => {
    expect(e('In', 'pod', ['a', 'b'])).toBe(true);
    expect(e('In', 'pod', ['b'])).toBe(false);
    expect(e('In', 'missing', ['a'])).toBe(false);
  });
  it('NotIn (a missing key is not in)', () => {
    expect(e('NotIn', 'pod', ['b'])).toBe(true);
    expect(e('NotIn', 'pod', ['a'])).toBe(false);
    expect(e('NotIn', 'missing', ['a'])).toBe(true);
  });
  it('Exists and DoesNotExist', () => {
    expect(e('Exists', 'tier')).toBe(true);
    expect(e('Exists', 'missing')).toBe(false);
    expect(e('DoesNotExist', 'missing')).toBe(true);
    expect(e('DoesNotExist', 'tier')).toBe(false);
  });
  it('the empty selector matches everything, even no labels', () => {
    expect(m({})).toBe(true);
    expect(matchesSelector({ matchLabels: {}, matchExpressions: [] }, {})).toBe(true);
  });
  it('matchLabels AND every expression', () => {
    const both = (tier: string) => m({ matchLabels: { pod: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: [tier] }, { key: 'x', operator: 'DoesNotExist', values: [] }] });
    expect(both('web')).toBe(true);
    expect(both('db')).toBe(false);
  });
});
