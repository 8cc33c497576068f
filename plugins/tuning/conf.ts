import * as z from 'zod/mini';
import { parseConf, stateDirOf } from '../../lib/cni/conf.ts';
import { invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** A sysctl key: `net.` then dot- or slash-separated segments; `IFNAME` is replaced by CNI_IFNAME. */
const SYSCTL_KEY = /^net[./][A-Za-z0-9_./-]+$/;
const SYSCTL_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

const Overrides = {
  sysctl: z.optional(z.nullable(z.record(z.string(), z.string()))),
  mac: z.optional(z.string()),
  promisc: z.optional(z.boolean()),
  mtu: z.optional(z.number().check(z.int())),
  allmulti: z.optional(z.boolean()),
  txQLen: z.optional(z.number().check(z.int())),
};

export const TuningConf = lazy(() =>
  z.looseObject({
    name: z.string(),
    dataDir: z.optional(z.string()),
    ...Overrides,
    runtimeConfig: z.optional(z.nullable(z.looseObject({ mac: z.optional(z.string()) }))),
    args: z.optional(z.nullable(z.looseObject({ cni: z.optional(z.nullable(z.looseObject(Overrides))) }))),
  }),
);
export type TuningConf = z.infer<ReturnType<typeof TuningConf>>;

/** What tuning changes on the container interface, after every source is merged and checked. */
export interface Tuning {
  dataDir: string;
  /** Sysctl paths relative to /proc/sys (slash-separated, IFNAME substituted) → value. */
  sysctl: [string, string][];
  mac?: string;
  promisc: boolean;
  mtu?: number;
  allmulti?: boolean;
  txQLen?: number;
}

const DEFAULT_DATA_DIR = '/run/cni/tuning';

/** Where the saved state lives: every verb resolves and checks it here before touching a file. */
export const stateDir = (conf: Pick<TuningConf, 'dataDir'>): string => stateDirOf(conf.dataDir, DEFAULT_DATA_DIR);

/**
 * Merges the config, CNI_ARGS `MAC`, runtimeConfig.mac and args.cni (that order, later wins, as the
 * reference plugin) and validates every value before anything is touched.
 */
export function resolveTuning(conf: TuningConf, ifname: string, cniArgMac: string | undefined, allowlist: string[] | undefined): Tuning {
  const a = conf.args?.cni ?? {};
  const sysctl = { ...conf.sysctl, ...a.sysctl };
  const mac = a.mac ?? (conf.runtimeConfig?.mac || undefined) ?? (cniArgMac || undefined) ?? (conf.mac || undefined);
  const mtu = a.mtu ?? (conf.mtu || undefined);
  const txQLen = a.txQLen ?? conf.txQLen;
  const dataDir = stateDir(conf);
  if (mac !== undefined && !MAC.test(mac)) throw invalidConfig(`invalid MAC address ${JSON.stringify(mac)}`);
  if (mtu !== undefined && (mtu < 68 || mtu > 65535)) throw invalidConfig(`invalid mtu ${mtu}`, 'must be between 68 and 65535');
  if (txQLen !== undefined && (txQLen < 0 || txQLen > 0xffffffff)) throw invalidConfig(`invalid txQLen ${txQLen}`);
  return {
    dataDir,
    sysctl: Object.entries(sysctl).map(([key, value]) => [sysctlPath(key, ifname, allowlist), checkValue(key, value)]),
    ...(mac ? { mac: mac.toLowerCase() } : {}),
    promisc: a.promisc ?? conf.promisc ?? false,
    ...(mtu ? { mtu } : {}),
    ...((a.allmulti ?? conf.allmulti) !== undefined ? { allmulti: (a.allmulti ?? conf.allmulti)! } : {}),
    ...(txQLen !== undefined ? { txQLen } : {}),
  };
}

/**
 * The config merged and checked (code 7). `ifname` only fills `IFNAME` in sysctl keys; the allowlist
 * is the host's file when it exists.
 */
export function parseTuning(raw: unknown, ifname: string, cniArgMac: string | undefined, allowlist: string[] | undefined): { conf: TuningConf; tuning: Tuning } {
  const conf = parseConf(TuningConf(), raw);
  return { conf, tuning: resolveTuning(conf, ifname, cniArgMac, allowlist) };
}

/**
 * `net.ipv4.conf.IFNAME.rp_filter` → `net/ipv4/conf/eth0/rp_filter`. Only keys of the (per-namespace)
 * network subsystem, only those the allowlist file permits when it exists.
 */
export function sysctlPath(key: string, ifname: string, allowlist: string[] | undefined): string {
  if (!SYSCTL_KEY.test(key)) throw invalidConfig(`invalid net sysctl key: ${JSON.stringify(key)}`, 'only net.* keys of the container namespace may be set');
  if (allowlist && !allowlist.some((pattern) => new RegExp(pattern).test(key))) {
    throw invalidConfig(`Sysctl ${key} is not allowed`, `allowed: ${allowlist.join(', ')}`);
  }
  // A key with slashes keeps its dots (interface names like eth0.100); otherwise dots separate.
  const segments = (key.includes('/') ? key.split('/') : key.split('.')).map((s) => (s === 'IFNAME' ? ifname : s));
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw invalidConfig(`invalid net sysctl key: ${JSON.stringify(key)}`);
  return segments.join('/');
}

/** A sysctl as ADD saves it (`net/ipv4/conf/eth0/rp_filter`, a value without control characters). */
const SAVED_PATH = /^net(\/[A-Za-z0-9_.-]+)+$/;

/**
 * Whether DEL may write a sysctl back from a state file. The file is input too (anyone who can
 * write the data dir): only what ADD could have saved is restored, never `kernel.*` or a `..` path.
 */
export function restorableSysctl(path: string, value: unknown): value is string {
  return SAVED_PATH.test(path) && !path.split('/').some((s) => s === '.' || s === '..') && typeof value === 'string' && SYSCTL_VALUE.test(value);
}

function checkValue(key: string, value: string): string {
  if (!SYSCTL_VALUE.test(value)) throw invalidConfig(`invalid value for sysctl ${key}`, 'control characters are not allowed');
  return value;
}

/** Allowlist file lines: one regular expression each (as /etc/cni/tuning/allowlist.conf). */
export function parseAllowlist(text: string): string[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  for (const l of lines) {
    try {
      new RegExp(l);
    } catch {
      throw invalidConfig(`invalid sysctl allowlist entry ${JSON.stringify(l)}`);
    }
  }
  return lines;
}
