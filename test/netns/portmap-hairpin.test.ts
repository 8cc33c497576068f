import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeConflist } from '../support/cni.ts';
import { CNITOOL, OUR_BIN, REF_BIN } from '../support/paths.ts';
import { Scope, sh, tryRun } from '../support/scope.ts';

/**
 * A container reaching its own host port (hairpin) behind a bridge with ipMasq, as containerd's CRI
 * sets it up. Found by the CRI e2e: the bridge's masquerade chain ACCEPTs traffic to the subnet, so
 * portmap's masquerade jump must come before it in POSTROUTING, or the hairpin reply never returns.
 * The "host" is a namespace of the test's own, so no other test's portmap chains are already there.
 */
describe('portmap hairpin behind bridge ipMasq', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  /** bridge (ipMasq, hairpin) + portmap ADDed by cnitool in a private host namespace; DEL deferred. */
  function attach(bin: string, backend?: 'nftables') {
    const [a, b, port] = [randomInt(1, 250), randomInt(1, 250), randomInt(20000, 60000)];
    const net = `hp-${s.prefix}`;
    const confDir = s.tmpdir();
    writeConflist(confDir, {
      cniVersion: '1.0.0',
      name: net,
      plugins: [
        { type: 'bridge', bridge: 'hpbr0', isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', dataDir: s.tmpdir(), routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: `10.${a}.${b}.0/24` }]] } },
        { type: 'portmap', capabilities: { portMappings: true }, ...(backend ? { backend } : {}) },
      ],
    });
    const [host, c] = [s.netns('h'), s.netns()];
    const containerId = s.name('c');
    const capArgs = { portMappings: [{ HostPort: port, ContainerPort: 8080, Protocol: 'tcp', HostIP: '' }] };
    const env = [`NETCONFPATH=${confDir}`, `CNI_PATH=${bin}`, `CNI_CACHEDIR=${s.tmpdir()}`, `CNI_CONTAINERID=${containerId}`, `CAP_ARGS=${JSON.stringify(capArgs)}`];
    const inHost = (argv: string[]) => ['ip', 'netns', 'exec', host.name, ...argv];
    const cnitool = (verb: string) => tryRun(inHost(['env', ...env, CNITOOL, verb, net, c.path]));
    const add = cnitool('add');
    expect(add.status, add.stderr).toBe(0);
    s.defer(() => cnitool('del'));
    const ip: string = JSON.parse(add.stdout).ips[0].address.split('/')[0];
    return { c, containerId, ip, gateway: `10.${a}.${b}.1`, port, inHost, cnitool };
  }

  /** What a client in the container gets back from its own host port through the gateway (echo server). */
  function hairpinEcho(x: ReturnType<typeof attach>): string {
    const server = spawn('ip', ['netns', 'exec', x.c.name, 'socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'EXEC:cat'], { stdio: 'ignore' });
    s.defer(() => server.kill());
    let got = '';
    for (let i = 0; i < 10 && got !== 'ping'; i++) {
      got = tryRun(['ip', 'netns', 'exec', x.c.name, 'timeout', '3', 'socat', '-T', '1', '-', `TCP:${x.gateway}:${x.port}`], 'ping\n').stdout.trim();
    }
    return got;
  }

  for (const [who, bin] of [['ours', OUR_BIN], ['reference', REF_BIN]] as const) {
    it(`iptables: the masquerade jump precedes the bridge's, and a container reaches its own host port (${who})`, () => {
      const x = attach(bin);
      const postrouting = sh(x.inHost(['iptables', '-w', '-t', 'nat', '-S', 'POSTROUTING'])).split('\n');
      const portfwd = postrouting.findIndex((l) => l.endsWith('-j CNI-HOSTPORT-MASQ'));
      const masq = postrouting.findIndex((l) => l.startsWith(`-A POSTROUTING -s ${x.ip}/32 `) && l.includes(x.containerId));
      expect(portfwd).toBeGreaterThan(0);
      expect(masq).toBeGreaterThan(0);
      expect(portfwd).toBeLessThan(masq);
      expect(hairpinEcho(x)).toBe('ping');

      const del = x.cnitool('del');
      expect(del.status, del.stderr).toBe(0);
      expect(sh(x.inHost(['iptables-save', '-t', 'nat']))).not.toContain(x.containerId);
    });
  }

  it('nftables: a container reaches its own host port (ours)', () => {
    const x = attach(OUR_BIN, 'nftables');
    expect(hairpinEcho(x)).toBe('ping');
    const del = x.cnitool('del');
    expect(del.status, del.stderr).toBe(0);
    expect(sh(x.inHost(['nft', 'list', 'ruleset']))).not.toContain(`${x.ip} `);
  });
});
