import { existsSync } from 'node:fs';
import { parseConf } from '../../lib/cni/conf.ts';
import { randomBytes } from '../../lib/digest.ts';
import { CniError, ErrorCode } from '../../lib/cni/errors.ts';
import { definePlugin, type PluginContext } from '../../lib/cni/plugin.ts';
import type { Result } from '../../lib/cni/result.ts';
import { IpBatchError, batchLine, bridgeBatch, ipBatch, linkGone, namespaceGone, parseIpJson } from '../../lib/ip/ip.ts';
import { randomMac } from '../../lib/ip/mac.ts';
import { ipBatchInNetns } from '../../lib/ip/netns-batch.ts';
import { refuseOwnNetns } from '../../lib/ip/netns-guard.ts';
import { observeLink } from '../../lib/ip/observe.ts';
import { ensureHostSysctl } from '../../lib/ip/sysctl.ts';
import type { IpLink } from '../../lib/ip/types.ts';
import { parseCidr } from '../../lib/net/ip.ts';
import { addMasquerade, removeMasquerade, removeMasqueradeOf } from '../../lib/netfilter/masquerade.ts';
import { checkBridge } from './check.ts';
import { BridgeConf, resolveBridge, type Bridge } from './conf.ts';
import { addMacSpoofChk, removeMacSpoofChk, spoofKey } from './macspoof.ts';
import { planAddressing, planContainer, planHost, planVlans, type Addressing } from './plan.ts';

/** Parses and resolves the config of any verb: code 7 before anything is touched. */
export function parseBridge(ctx: PluginContext): Bridge {
  return resolveBridge(parseConf(BridgeConf(), ctx.conf), ctx.cniArgs(['MAC']).MAC);
}

function requireNetns(netns: string): void {
  if (!existsSync(netns)) throw new CniError(ErrorCode.unknownContainer, `failed to open netns "${netns}": no such file`);
  refuseOwnNetns(netns);
}

async function ipamAdd(ctx: PluginContext, type: string): Promise<Result> {
  const result = await ctx.delegate(type, 'ADD');
  if (!result?.ips?.length) throw new CniError(ErrorCode.internal, 'IPAM plugin returned missing IP config');
  return result;
}

/** Runs the host batch; a first ADD that loses the race to create the bridge re-observes and retries. */
async function applyHost(ctx: PluginContext, br: Bridge, hostVeth: string, addressing: Addressing | undefined, observed: IpLink | undefined): Promise<{ veth: IpLink; bridge: IpLink }> {
  for (let attempt = 0; ; attempt++) {
    const lines = planHost(br, { observed, hostVeth, ifname: ctx.ifname, netns: ctx.netns, bridgeMac: randomMac(), gateways: addressing?.gateways ?? [] });
    try {
      const [veth, bridge] = parseIpJson<IpLink[][]>(await ipBatch(ctx.exec, lines, { json: true }));
      return { veth: veth![0]!, bridge: bridge![0]! };
    } catch (err) {
      if (!(err instanceof IpBatchError)) throw err;
      const exists = /File exists/.test(err.stderr);
      if (exists && !observed && err.failedLine === 1 && attempt < 3) {
        observed = await observeLink(ctx.exec, br.bridge);
        continue;
      }
      if (exists && err.command.startsWith(`link add ${hostVeth} `)) {
        throw new CniError(ErrorCode.internal, `container veth name provided (${ctx.ifname}) already exists`, err.message);
      }
      if (!observed && err.failedLine === 1) throw new CniError(ErrorCode.internal, `failed to create bridge "${br.bridge}"`, err.message);
      throw new CniError(ErrorCode.internal, `failed to set up the host side of ${hostVeth}`, err.message);
    }
  }
}

/** With enabledad, addresses are usable only after DAD: wait for it, as the reference does (≤ 5 s). */
async function settleDad(ctx: PluginContext): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 50) {
    const link = await observeLink(ctx.exec, ctx.ifname, ctx.netns);
    const addrs = link?.addr_info ?? [];
    const failed = addrs.find((a) => a.dadfailed);
    if (failed) throw new CniError(ErrorCode.internal, `DAD failed for ${failed.local} on ${ctx.ifname}`);
    if (!addrs.some((a) => a.tentative)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new CniError(ErrorCode.internal, `addresses on ${ctx.ifname} still tentative after 5 s`);
}

/** netpol's public surface, loaded only when the config has `policy`. */
const netpol = () => import('../netpol/index.ts');

const masqAddresses = (addressing: Addressing) => addressing.ips.flatMap((ipc) => parseCidr(ipc.address) ?? []);

/** Best effort: the reference ignores failures here too (IPv6 may be disabled). */
function trySysctl(path: string, value: string): void {
  try {
    ensureHostSysctl({ path, value });
  } catch {
    // not fatal
  }
}

export default definePlugin({
  name: 'bridge',
  summary: 'connects containers to a Linux bridge with veth pairs (IPv4/IPv6, gateway, masquerade, VLANs)',
  validate: (conf) => void resolveBridge(parseConf(BridgeConf(), conf), undefined),

  async add(ctx) {
    const br = parseBridge(ctx);
    requireNetns(ctx.netns);
    await using undo = ctx.undo();

    if (br.ipamType) undo.push('release IPAM', () => ctx.delegate(br.ipamType!, 'DEL'));
    // allSettled: a fast IPAM failure must not leave the observe running, and the IPAM undo must not
    // run before an ADD still in flight has finished (its address would leak)
    const [seen, ipam] = await Promise.allSettled([observeLink(ctx.exec, br.bridge), br.ipamType ? ipamAdd(ctx, br.ipamType) : undefined]);
    if (ipam.status === 'rejected') throw ipam.reason;
    if (seen.status === 'rejected') throw seen.reason;
    const [observed, ipamResult] = [seen.value, ipam.value];
    const addressing = ipamResult ? planAddressing(br, ipamResult) : undefined;

    const hostVeth = `veth${randomBytes(4).toString('hex')}`;
    undo.push(`delete ${hostVeth}`, () => ipBatch(ctx.exec, [batchLine('link', 'del', hostVeth)]).catch((e: unknown) => (linkGone(e) ? undefined : Promise.reject(e))));
    // Masquerade needs only the addresses: it runs while the links are made (iptables-restore is its own
    // process). Its undo waits for an add still in flight, so a removal never runs before it.
    let masq: Promise<void> | undefined;
    if (addressing && br.ipMasq) {
      undo.push('remove masquerade', async () => {
        await masq?.catch(() => undefined);
        await removeMasquerade(ctx.exec, br.ipMasqBackend, br.network, { only: [ctx.containerId] });
      });
      masq = addMasquerade(ctx.exec, br.ipMasqBackend, br.network, ctx.containerId, masqAddresses(addressing));
    }
    const links = async () => {
      // before the interface exists: the pod's first packet is judged (the masquerade meanwhile runs)
      if (br.policy && addressing) {
        const policy = br.policy;
        const api = await netpol();
        undo.push('unregister policy', () => api.unregisterPod(ctx, policy));
        await api.registerPod(ctx, policy, addressing.ips.map((ipc) => ipc.address));
      }
      const host = await applyHost(ctx, br, hostVeth, addressing, observed);
      trySysctl(`net/ipv6/conf/${br.bridge}/accept_ra`, '0');
      const vlanLines = planVlans(br, hostVeth);
      if (vlanLines.length) {
        try {
          await bridgeBatch(ctx.exec, vlanLines);
        } catch (err) {
          throw new CniError(ErrorCode.internal, `failed to set up VLANs on ${hostVeth}`, (err as Error).message);
        }
      }
      const { lines, sysctls } = planContainer(br, ctx.ifname, addressing);
      let container: IpLink;
      try {
        container = parseIpJson<IpLink[]>(await ipBatchInNetns(ctx.exec, ctx.netns, lines, sysctls))[0]!;
      } catch (err) {
        throw new CniError(ErrorCode.internal, `failed to configure ${ctx.ifname} in ${ctx.netns}`, (err as Error).message);
      }
      if (addressing && br.enabledad && !br.disableContainerInterface) await settleDad(ctx);
      return { host, container };
    };
    // allSettled: undo must not start removing the masquerade while its restore is still running
    const [made, masqDone] = await Promise.allSettled([links(), masq]);
    if (made.status === 'rejected') throw made.reason;
    if (masqDone.status === 'rejected') throw masqDone.reason;
    const { host, container } = made.value;

    if (addressing && br.isGateway) {
      for (const family of new Set(addressing.gateways.map((g) => g.ip.family))) {
        ensureHostSysctl(family === 4 ? { path: 'net/ipv4/ip_forward', value: '1' } : { path: 'net/ipv6/conf/all/forwarding', value: '1' });
      }
    }
    if (br.macspoofchk) {
      const key = spoofKey(ctx.containerId, ctx.ifname);
      undo.push('remove macspoofchk', () => removeMacSpoofChk(ctx.exec, br.network, { only: [key] }));
      await addMacSpoofChk(ctx.exec, br.network, key, hostVeth, container.address!);
    }

    const result: Result = {
      interfaces: [
        { name: br.bridge, mac: host.bridge.address },
        { name: hostVeth, mac: host.veth.address },
        { name: ctx.ifname, mac: container.address, sandbox: ctx.netns },
      ],
      ...(addressing ? { ips: addressing.ips, routes: addressing.routes } : {}),
      ...(br.dns ? { dns: br.dns } : ipamResult?.dns ? { dns: ipamResult.dns } : {}),
    };
    undo.commit();
    return result;
  },

  async del(ctx) {
    const br = parseBridge(ctx);
    const steps: Promise<unknown>[] = [deleteContainerLink(ctx)];
    if (br.ipamType) steps.push(ctx.delegate(br.ipamType, 'DEL'));
    if (br.ipMasq) {
      // prevResult names the addresses ADD masqueraded: delete exactly those rules, without reading the table first
      const known = (ctx.prevResult?.ips ?? []).flatMap((ipc) => parseCidr(ipc.address) ?? []);
      steps.push(
        known.length > 0
          ? removeMasqueradeOf(ctx.exec, br.ipMasqBackend, br.network, ctx.containerId, known)
          : removeMasquerade(ctx.exec, br.ipMasqBackend, br.network, { only: [ctx.containerId] }),
      );
    }
    if (br.macspoofchk) steps.push(removeMacSpoofChk(ctx.exec, br.network, { only: [spoofKey(ctx.containerId, ctx.ifname)] }));
    if (br.policy) steps.push(netpol().then((api) => api.unregisterPod(ctx, br.policy!)));
    const failed = (await Promise.allSettled(steps)).find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  },

  async check(ctx) {
    const br = parseBridge(ctx);
    requireNetns(ctx.netns);
    if (br.ipamType) await ctx.delegate(br.ipamType, 'CHECK');
    if (!ctx.prevResult) throw new CniError(ErrorCode.invalidConfig, 'Required prevResult missing');
    await checkBridge(ctx, br, ctx.prevResult);
    if (br.policy) await (await netpol()).checkPod(ctx, br.policy);
  },

  async gc(ctx) {
    const br = parseBridge(ctx);
    const valid = ctx.validAttachments();
    const ids = valid.map((a) => a.containerID);
    await removeMasquerade(ctx.exec, 'iptables', br.network, { allBut: ids });
    await removeMasquerade(ctx.exec, 'nftables', br.network, { allBut: ids });
    await removeMacSpoofChk(ctx.exec, br.network, { allBut: valid.map((a) => spoofKey(a.containerID, a.ifname)) });
    if (br.policy) await (await netpol()).gcPods(ctx, br.policy, valid);
    if (br.ipamType) await ctx.delegate(br.ipamType, 'GC');
  },

  async status(ctx) {
    const br = parseBridge(ctx);
    if (br.policy) (await netpol()).policyStatus(br.policy);
    if (br.ipamType) await ctx.delegate(br.ipamType, 'STATUS');
  },
});

/** Deletes the container's interface (and so its veth peer); a gone namespace or link is success. */
async function deleteContainerLink(ctx: PluginContext): Promise<void> {
  if (!ctx.netns || !existsSync(ctx.netns)) return;
  try {
    await ipBatch(ctx.exec, [batchLine('link', 'del', 'dev', ctx.ifname)], { netns: ctx.netns });
  } catch (err) {
    if (linkGone(err) || namespaceGone(err)) return;
    throw err;
  }
}
