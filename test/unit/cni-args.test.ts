import { describe, expect, it } from 'vitest';
import { knownCniArgs, splitCniArgs } from '../../lib/cni/cni-args.ts';

const code4 = (msg: string) => expect.objectContaining({ code: 4, message: msg });

describe('CNI_ARGS (libcni LoadArgs semantics)', () => {
  it('splits K=V pairs; empty input is no args, empty values are allowed', () => {
    expect(splitCniArgs('')).toEqual([]);
    expect(splitCniArgs('A=1;B=;C=x')).toEqual([['A', '1'], ['B', ''], ['C', 'x']]);
  });

  it('a pair without exactly one "=" is code 4, as is a trailing ";"', () => {
    expect(() => splitCniArgs('A')).toThrow(code4('CNI_ARGS: invalid pair "A"'));
    expect(() => splitCniArgs('A=1=2')).toThrow(code4('CNI_ARGS: invalid pair "A=1=2"'));
    expect(() => splitCniArgs('A=1;')).toThrow(code4('CNI_ARGS: invalid pair ""'));
  });

  it('returns the keys the plugin knows', () => {
    expect(knownCniArgs('IP=10.0.0.2;MAC=0a:58:00:00:00:01', ['IP', 'MAC'])).toEqual({ IP: '10.0.0.2', MAC: '0a:58:00:00:00:01' });
  });

  it('rejects unknown keys, all of them named', () => {
    expect(() => knownCniArgs('FOO=1;IP=x;BAR=2', ['IP'])).toThrow(code4('CNI_ARGS: unknown args ["FOO=1","BAR=2"]'));
  });

  it('keys are case-sensitive, as Go struct fields', () => {
    expect(() => knownCniArgs('ip=10.0.0.2', ['IP'])).toThrow(code4('CNI_ARGS: unknown args ["ip=10.0.0.2"]'));
    expect(() => knownCniArgs('ignoreunknown=1;X=1', [])).toThrow(/unknown args/);
  });

  it('IgnoreUnknown=1/true (any case) accepts unknown keys, wherever it appears', () => {
    for (const v of ['1', 'true', 'TRUE', 'True']) {
      expect(knownCniArgs(`FOO=1;IgnoreUnknown=${v}`, [])).toEqual({ IgnoreUnknown: v });
    }
    expect(() => knownCniArgs('FOO=1;IgnoreUnknown=0', [])).toThrow(/unknown args/);
    expect(() => knownCniArgs('FOO=1;IgnoreUnknown=false', [])).toThrow(/unknown args/);
  });

  it('an IgnoreUnknown that is not a boolean is code 4', () => {
    expect(() => knownCniArgs('IgnoreUnknown=yes', [])).toThrow(code4('CNI_ARGS: invalid boolean in pair "IgnoreUnknown=yes"'));
  });

  it('accepts the K8S_POD_* keys every runtime sends without IgnoreUnknown', () => {
    const raw = 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234';
    expect(knownCniArgs(raw, [])).toEqual({ K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'web-0', K8S_POD_INFRA_CONTAINER_ID: 'abc', K8S_POD_UID: '1234' });
  });

  it('the CRI and podman strings parse', () => {
    expect(knownCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=id;K8S_POD_UID=u', [])).toMatchObject({ K8S_POD_NAME: 'p' });
    expect(knownCniArgs('IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.88.0.9;MAC=aa', ['IP'])).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'p', IP: '10.88.0.9' });
  });
});
