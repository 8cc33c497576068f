import * as z from 'zod/mini';
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
