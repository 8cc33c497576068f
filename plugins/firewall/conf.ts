import * as z from 'zod/mini';
import { parseConf } from '../../lib/cni/conf.ts';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { CHAIN_NAME } from '../../lib/netfilter/iptables.ts';

export const FirewallConf = lazy(() =>
  z.looseObject({
    name: z.string(),
    // podman writes "backend": "" — the reference reads an empty backend as the default (iptables).
    backend: z.optional(z.enum(['', 'iptables', 'firewalld'])),
    iptablesAdminChainName: z.optional(z.string().check(z.regex(CHAIN_NAME, 'must be 1-28 letters, digits, "_", "." or "-"'))),
    firewalldZone: z.optional(z.string()),
    ingressPolicy: z.optional(z.enum(['', 'open', 'same-bridge'])),
  }),
);
export type FirewallConf = z.infer<ReturnType<typeof FirewallConf>>;

/** The config of any verb, with what we refuse beyond the schema: code 7 before anything is touched. */
export function parseFirewall(raw: unknown): FirewallConf {
  const conf = parseConf(FirewallConf(), raw);
  if (conf.backend === 'firewalld') throw invalidConfig('the firewalld backend is not supported', 'use "backend": "iptables"');
  return conf;
}
