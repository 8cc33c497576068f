import { randomBytes } from '../digest.ts';

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** A MAC in lowercase `aa:bb:cc:dd:ee:ff`, or undefined when malformed. */
export function parseMac(text: string): string | undefined {
  return MAC.test(text) ? text.toLowerCase() : undefined;
}

export const isUnicastMac = (mac: string): boolean => (parseInt(mac.slice(0, 2), 16) & 1) === 0;

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
