import * as z from 'zod/mini';
import { validIfName } from '../../lib/cni/env.ts';
import { CniError, invalidConfig } from '../../lib/cni/errors.ts';
import { lazy } from '../../lib/cni/lazy.ts';
import { flag, optInt, optString, string } from '../../lib/cni/schemas.ts';
import { isUnicastMac, parseMac } from '../../lib/ip/mac.ts';
import { resolveNetpol, type Netpol } from '../netpol/conf.ts';

export const BridgeConf = lazy(() =>
  z.looseObject({
    name: string(),
    bridge: optString(),
    isGateway: flag(),
    isDefaultGateway: flag(),
    forceAddress: flag(),
    ipMasq: flag(),
    ipMasqBackend: z.optional(z.nullable(z.enum(['iptables', 'nftables']))),
    mtu: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(65535))),
    hairpinMode: flag(),
    promiscMode: flag(),
    vlan: optInt(),
    vlanTrunk: z.optional(z.nullable(z.array(z.looseObject({ minID: optInt(), maxID: optInt(), id: optInt() })))),
    preserveDefaultVlan: flag(),
    macspoofchk: flag(),
    enabledad: flag(),
    disableContainerInterface: flag(),
    portIsolation: flag(),
    ipam: z.optional(z.nullable(z.looseObject({ type: optString() }))),
    dns: z.optional(z.nullable(z.looseObject({}))),
    args: z.optional(z.nullable(z.looseObject({ cni: z.optional(z.nullable(z.looseObject({ mac: optString() }))) }))),
    runtimeConfig: z.optional(z.nullable(z.looseObject({ mac: optString() }))),
    /** NetworkPolicy in-process: the netpol plugin's keys (objects, nodeName, stateDir, podSubnets). */
    policy: z.optional(z.nullable(z.looseObject({}))),
  }),
);
export type BridgeConf = z.infer<ReturnType<typeof BridgeConf>>;

/** The bridge's settings after defaults, precedence and every range check: what plan* works from. */
export interface Bridge {
  network: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  ipMasqBackend: 'iptables' | 'nftables';
  mtu: number | undefined;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** Access VLAN (untagged, PVID), 0 for none. */
  vlan: number;
  /** Trunk VLANs (tagged), sorted and unique. */
  vlanTrunk: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  ipamType: string | undefined;
  /** Container MAC: CNI_ARGS MAC < args.cni.mac < runtimeConfig.mac. */
  mac: string | undefined;
  dns: Record<string, unknown> | undefined;
  /** `policy`: netpol registers each pod in-process, after IPAM and before its interface exists. */
  policy: Netpol | undefined;
}

const inVlanRange = (v: number) => v > 0 && v <= 4094;

/** Trunk entries to a sorted list of VLAN IDs, with the reference's error texts. */
export function collectVlanTrunk(trunk: NonNullable<BridgeConf['vlanTrunk']>): number[] {
  const ids = new Set<number>();
  for (const item of trunk) {
    const { minID, maxID, id } = item;
    if (minID !== undefined && maxID !== undefined) {
      if (!inVlanRange(minID)) throw invalidConfig('incorrect trunk minID parameter');
      if (!inVlanRange(maxID)) throw invalidConfig('incorrect trunk maxID parameter');
      if (maxID < minID) throw invalidConfig('minID is greater than maxID in trunk parameter');
      for (let v = minID; v <= maxID; v++) ids.add(v);
    } else if (minID === undefined && maxID !== undefined) {
      throw invalidConfig('minID and maxID should be configured simultaneously, minID is missing');
    } else if (minID !== undefined && maxID === undefined) {
      throw invalidConfig('minID and maxID should be configured simultaneously, maxID is missing');
    }
    if (id !== undefined) {
      if (!inVlanRange(id)) throw invalidConfig('incorrect trunk id parameter');
      ids.add(id);
    }
  }
  return [...ids].sort((a, b) => a - b);
}

function checkMac(mac: string | undefined, source: string): string | undefined {
  if (mac === undefined || mac === '') return undefined;
  const parsed = parseMac(mac);
  if (!parsed) throw invalidConfig(`invalid MAC address ${JSON.stringify(mac)} in ${source}`);
  if (!isUnicastMac(parsed)) throw invalidConfig(`MAC address ${mac} in ${source} is not unicast`);
  return parsed;
}

/**
 * netpol's resolver on the `policy` keys (also vxlan's, which passes them to bridge); args carries
 * args.cni.labels, a pod's labels without Kubernetes.
 */
export function resolvePolicy(policy: Record<string, unknown>, conf: { name: string; args?: unknown }): Netpol {
  try {
    return resolveNetpol({ ...policy, name: conf.name, args: conf.args });
  } catch (err) {
    if (err instanceof CniError) throw new CniError(err.code, `policy: ${err.message}`, err.details);
    throw err;
  }
}

/** Everything decided before any side effect: defaults, precedence and validation (code 7). */
export function resolveBridge(conf: BridgeConf, cniArgMac: string | undefined): Bridge {
  const bridge = conf.bridge || 'cni0';
  const why = validIfName(bridge);
  if (why) throw invalidConfig(`invalid bridge name ${JSON.stringify(bridge)}: ${why}`);
  const vlan = conf.vlan ?? 0;
  if (vlan < 0 || vlan > 4094) throw invalidConfig(`invalid VLAN ID ${vlan} (must be between 0 and 4094)`);
  const vlanTrunk = conf.vlanTrunk ? collectVlanTrunk(conf.vlanTrunk) : [];
  if (vlan > 0 && vlanTrunk.length > 0) throw invalidConfig('cannot set vlan and vlanTrunk at the same time');
  if (conf.hairpinMode && conf.promiscMode) throw invalidConfig('cannot set hairpin mode and promiscuous mode at the same time');
  if (conf.mtu !== undefined && conf.mtu !== 0 && conf.mtu < 68) throw invalidConfig(`invalid mtu ${conf.mtu}`, 'must be 0 (the default) or between 68 and 65535');
  const mac =
    checkMac(conf.runtimeConfig?.mac, 'runtimeConfig.mac') ?? checkMac(conf.args?.cni?.mac, 'args.cni.mac') ?? checkMac(cniArgMac, 'CNI_ARGS MAC');
  const isDefaultGateway = conf.isDefaultGateway ?? false;
  const isGateway = isDefaultGateway || (conf.isGateway ?? false);
  if (vlan > 0 && isGateway) throw invalidConfig('vlan together with isGateway is not supported', 'the gateway would need a VLAN interface on the bridge');
  const dns = conf.dns ?? undefined;
  const dnsSet = dns && Object.values(dns).some((v) => v !== undefined && v !== null && v !== '');
  return {
    network: conf.name,
    bridge,
    isGateway,
    isDefaultGateway,
    forceAddress: conf.forceAddress ?? false,
    ipMasq: conf.ipMasq ?? false,
    ipMasqBackend: conf.ipMasqBackend ?? 'iptables',
    mtu: conf.mtu || undefined,
    hairpinMode: conf.hairpinMode ?? false,
    promiscMode: conf.promiscMode ?? false,
    vlan,
    vlanTrunk,
    preserveDefaultVlan: conf.preserveDefaultVlan ?? true,
    macspoofchk: conf.macspoofchk ?? false,
    enabledad: conf.enabledad ?? false,
    disableContainerInterface: conf.disableContainerInterface ?? false,
    portIsolation: conf.portIsolation ?? false,
    ipamType: conf.ipam?.type || undefined,
    mac,
    dns: dnsSet ? dns : undefined,
    policy: conf.policy ? resolvePolicy(conf.policy, conf) : undefined,
  };
}
