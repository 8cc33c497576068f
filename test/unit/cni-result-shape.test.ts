import { describe, expect, it } from 'vitest';
import { fieldsMissing, NEWEST, resultShape } from '../../lib/cni/result-shape.ts';
import { SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';

describe('result fields per spec version', () => {
  it('legacy ip4/ip6 before 0.3.0, ips with a version until 1.0.0, 1.1.0 fields from 1.1.0', () => {
    const table = Object.fromEntries(SUPPORTED_VERSIONS.map((v) => {
      const s = resultShape(v);
      return [v, [s.legacy, s.ip.includes('version'), s.interface.includes('pciID'), s.route.includes('table')]];
    }));
    expect(table).toEqual({
      '0.1.0': [true, true, false, false],
      '0.2.0': [true, true, false, false],
      '0.3.0': [false, true, false, false],
      '0.3.1': [false, true, false, false],
      '0.4.0': [false, true, false, false],
      '1.0.0': [false, false, false, false],
      '1.1.0': [false, false, true, true],
    });
  });
  it('says what converting from the newest shape drops', () => {
    const v1 = resultShape('1.0.0');
    expect(fieldsMissing(NEWEST.interface, v1.interface)).toEqual(['mtu', 'socketPath', 'pciID']);
    expect(fieldsMissing(NEWEST.route, v1.route)).toEqual(['mtu', 'advmss', 'priority', 'table', 'scope']);
    expect(fieldsMissing(NEWEST.ip, resultShape('0.4.0').ip)).toEqual([]);
  });
});
