/** Every CNI spec version we speak, oldest first. */
export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type SpecVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: SpecVersion = '1.1.0';
/** A config without cniVersion is a pre-versioning config: libcni reads it as 0.1.0. */
export const UNVERSIONED = '0.1.0';

export function isSupported(version: string): version is SpecVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** Compares semantic versions "a.b.c" numerically; returns <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export const atLeast = (version: string, min: string) => compareVersions(version, min) >= 0;

/** The spec version that introduced each verb after ADD and DEL. */
export const VERB_SINCE = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' } as const;

/** Whether a config of `version` allows the verb (ADD and DEL always). */
export const allowsVerb = (version: string, verb: string): boolean =>
  !Object.hasOwn(VERB_SINCE, verb) || atLeast(version, VERB_SINCE[verb as keyof typeof VERB_SINCE]);
