// portmap ADD / DEL (iptables backend) with 1 and 10 mappings, and with 500 containers' mappings
// already in the nat table, ours vs the reference. Direct exec with a prevResult, as the chain does.
import { spawnSync } from 'node:child_process';
import { childEnv } from './lib.mjs';

const SUBNET = '10.252'; // a /16 routed to a bench veth, so route_localnet lands there and nowhere else

function mappings(n, base) {
  return Array.from({ length: n }, (_, i) => ({ hostPort: base + i, containerPort: 8000 + i, protocol: i % 2 ? 'udp' : 'tcp' }));
}

function conf(name, ip, maps) {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name,
    type: 'portmap',
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: maps },
    prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/bench' }], ips: [{ address: `${ip}/16`, interface: 0 }] },
  });
}

export default {
  id: 'portmap',
  title: 'portmap ADD / DEL (iptables)',
  notes:
    'Direct exec, cniVersion 1.0.0, snat on (hairpin and localhost masquerade), prevResult of one IPv4 address; each iteration is an ADD then a DEL of the same container. ' +
    'tscni: one iptables-save and one iptables-restore per ADD and per DEL. "with 500 containers" times one container\'s ADD/DEL (1 mapping) while 500 others each hold 2 mappings in the nat table.',
  async run(ctx) {
    const link = `pmb${process.pid % 10000}`;
    const net = `bench-portmap-${process.pid}`;
    spawnSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
    spawnSync('ip', ['addr', 'add', `${SUBNET}.0.1/16`, 'dev', link]);
    spawnSync('ip', ['link', 'set', link, 'up']);
    const gc = () => spawnSync(ctx.ours('portmap'), [], { env: childEnv({ CNI_COMMAND: 'GC', CNI_PATH: ctx.oursDir }), input: JSON.stringify({ cniVersion: '1.1.0', name: net, type: 'portmap', 'cni.dev/valid-attachments': [] }) });
    try {
      const pair = (dir, tag, n, base) => {
        const stdin = conf(net, `${SUBNET}.1.${tag === 'o' ? 2 : 3}`, mappings(n, base));
        const env = (command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ctx.containerId(`${tag}${n}`), CNI_NETNS: '/run/netns/bench', CNI_IFNAME: 'eth0', CNI_PATH: dir });
        return ctx.sample(() => ({
          ADD: ctx.timeSpawn(`${dir}/portmap`, { env: env('ADD'), stdin }),
          DEL: ctx.timeSpawn(`${dir}/portmap`, { env: env('DEL'), stdin }),
        }));
      };
      const rows = [];
      const measure = (label, n, portBase) => {
        const o = pair(ctx.oursDir, 'o', n, portBase);
        const r = pair(ctx.refDir, 'r', n, portBase + 100);
        rows.push(ctx.compare(`${label} ADD`, o.ADD, r.ADD), ctx.compare(`${label} DEL`, o.DEL, r.DEL));
      };
      measure('1 mapping', 1, 41000);
      measure('10 mappings', 10, 41200);
      // 500 other containers with 2 mappings each (made by tscni; the reference reads the same chains).
      for (let i = 0; i < 500; i++) {
        const stdin = conf(net, `${SUBNET}.${2 + Math.floor(i / 250)}.${(i % 250) + 2}`, mappings(2, 42000 + 2 * i));
        const r = spawnSync(ctx.ours('portmap'), [], { env: childEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: ctx.containerId(`bulk${i}`), CNI_NETNS: '/run/netns/bench', CNI_IFNAME: 'eth0', CNI_PATH: ctx.oursDir }), input: stdin });
        if (r.status !== 0) throw new Error(`populating mapping ${i}: ${r.stdout}`);
      }
      measure('with 500 containers: 1 mapping', 1, 41400);
      return rows;
    } finally {
      gc();
      spawnSync('ip', ['link', 'del', link]);
    }
  },
};
