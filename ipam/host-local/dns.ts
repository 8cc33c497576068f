import { readFileSync } from 'node:fs';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import type { DNS } from '../../lib/cni/result.ts';

/** Reads nameserver/domain/search/options lines as the reference does; comments and junk are skipped. */
export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...values] = line.split(/\s+/);
    if (values.length === 0) continue;
    if (key === 'nameserver') (dns.nameservers ??= []).push(values[0]!);
    else if (key === 'domain') dns.domain = values[0]!;
    else if (key === 'search') (dns.search ??= []).push(...values);
    else if (key === 'options') (dns.options ??= []).push(...values);
  }
  return dns;
}

export function readResolvConf(path: string): DNS {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(ErrorCode.invalidConfig, `cannot read resolvConf ${path}`, (err as Error).message);
  }
  return parseResolvConf(text);
}
