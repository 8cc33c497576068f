/**
 * Hashes and random bytes without importing node:crypto: in the compiled binary (bun) loading that
 * module costs ~4 ms of every process start, where Bun.CryptoHasher and Web Crypto's
 * getRandomValues are built in. Under Node, node:crypto is loaded on first use.
 */
type Algorithm = 'sha256' | 'sha512';

interface BunHashing {
  CryptoHasher: new (algorithm: Algorithm) => { update(data: string): { digest(): Uint8Array } };
}
const bun = (globalThis as { Bun?: BunHashing }).Bun;

export function digest(algorithm: Algorithm, text: string): Buffer {
  if (bun) return Buffer.from(new bun.CryptoHasher(algorithm).update(text).digest());
  return process.getBuiltinModule('node:crypto').createHash(algorithm).update(text).digest();
}

export const digestHex = (algorithm: Algorithm, text: string): string => digest(algorithm, text).toString('hex');

/** The 24 hex digits naming one attachment: sha512(network + containerId), as the reference hashes its chain and ifb names. */
export const attachmentHash = (network: string, containerId: string): string => digestHex('sha512', network + containerId).slice(0, 24);

/** 12 hex digits naming a network where the name itself does not fit (nft comments, tags). */
export const networkHash = (network: string): string => digestHex('sha512', network).slice(0, 12);

export const randomBytes = (length: number): Buffer => Buffer.from(crypto.getRandomValues(new Uint8Array(length)));
