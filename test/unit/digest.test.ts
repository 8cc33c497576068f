import { describe, expect, it } from 'vitest';
import { digest, digestHex, randomBytes } from '../../lib/digest.ts';

describe('digest', () => {
  it('hashes as the standard vectors say (sha256, sha512 of "abc")', () => {
    expect(digestHex('sha256', 'abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(digestHex('sha512', 'abc').slice(0, 32)).toBe('ddaf35a193617abacc417349ae204131');
    expect(digest('sha256', 'abc').length).toBe(32);
  });

  it('gives random bytes of the asked length that differ between calls', () => {
    const a = randomBytes(16);
    expect(a.length).toBe(16);
    expect(a.equals(randomBytes(16))).toBe(false);
  });
});
