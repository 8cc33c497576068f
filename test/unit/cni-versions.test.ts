import { describe, expect, it } from 'vitest';
import { atLeast, compareVersions, isSupported, SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';

describe('spec versions', () => {
  it('supports exactly 0.1.0 … 1.1.0', () => {
    expect(SUPPORTED_VERSIONS).toEqual(['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    for (const v of ['0.5.0', '1.0', '1.2.0', '', ' 1.0.0', 'v1.0.0']) expect(isSupported(v), v).toBe(false);
  });

  it('compares numerically, not as strings', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(atLeast('0.3.1', '0.4.0')).toBe(false);
    expect(atLeast('1.1.0', '0.4.0')).toBe(true);
  });
});
