import * as z from 'zod/mini';
import { parseConf } from '../../lib/cni/conf.ts';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';

const bits = () => z.optional(z.number().check(z.int(), z.nonnegative()));
const Entry = () => ({ ingressRate: bits(), ingressBurst: bits(), egressRate: bits(), egressBurst: bits() });

export const BandwidthConf = lazy(() =>
  z.looseObject({
    name: z.string(),
    ...Entry(),
    runtimeConfig: z.optional(z.nullable(z.looseObject({ bandwidth: z.optional(z.nullable(z.looseObject(Entry()))) }))),
  }),
);
export type BandwidthConf = z.infer<ReturnType<typeof BandwidthConf>>;

/** A token bucket: rate in bits per second, burst in bits (as configured). */
export interface Bucket {
  rate: number;
  burst: number;
}

/** Ingress = traffic into the container (shaped on the host veth), egress = out of it (via ifb). */
export interface Limits {
  ingress?: Bucket;
  egress?: Bucket;
}

const MAX_BURST_BYTES = 0xffffffff;

/** runtimeConfig.bandwidth (CRI, podman) replaces the static entry as a whole, as the reference. */
export function resolveLimits(conf: BandwidthConf): Limits {
  const e = conf.runtimeConfig?.bandwidth ?? conf;
  const ingress = bucket('ingress', e.ingressRate ?? 0, e.ingressBurst ?? 0);
  const egress = bucket('egress', e.egressRate ?? 0, e.egressBurst ?? 0);
  return { ...(ingress ? { ingress } : {}), ...(egress ? { egress } : {}) };
}

/** The config and its limits, every value checked: code 7 before anything is touched. */
export function parseBandwidth(raw: unknown): { conf: BandwidthConf; limits: Limits } {
  const conf = parseConf(BandwidthConf(), raw);
  return { conf, limits: resolveLimits(conf) };
}

function bucket(dir: string, rate: number, burst: number): Bucket | undefined {
  if (rate === 0 && burst === 0) return undefined;
  if (rate === 0) throw invalidConfig(`if ${dir}Burst is set, ${dir}Rate must also be set`);
  if (burst === 0) throw invalidConfig(`if ${dir}Rate is set, ${dir}Burst must also be set`);
  if (burst / 8 >= MAX_BURST_BYTES) throw invalidConfig(`${dir}Burst cannot be more than 4GB`);
  return { rate, burst };
}
