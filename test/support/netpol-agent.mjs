// One pod of the NetworkPolicy suite (test/support/netpol-cluster.ts), started inside the pod's
// network namespace: serves TCP (accept) and UDP (echo) on ports 80 and 81 of every address, and
// answers JSON lines on stdin, one JSON line each on stdout, in any order (matched by `id`):
//   {id, op: 'probe', probes: [{protocol: 'TCP'|'UDP', ip, port}]} -> {id, results: [boolean]}
//     a TCP connect / a UDP datagram and its echo, 1 s each, all at once
//   {id, op: 'sctp-send', family: 4|6, port, targets: [ip]}      -> {id}
//     one SCTP INIT to each target (nmap -sY: this kernel has no SCTP sockets)
//   {id, op: 'sctp-reset'} -> {id};  {id, op: 'sctp-seen'} -> {id, seen: ['ip . port']}
//     INITs that reached this pod, as an nft set of (source, port) in its own input hook
// Prints {ready: true} once everything listens.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';

const PORTS = [80, 81];
const TIMEOUT_MS = 1000;
const SEEN_TABLE = `table inet probe {
  set seen4 { type ipv4_addr . inet_service; flags dynamic; }
  set seen6 { type ipv6_addr . inet_service; flags dynamic; }
  chain input {
    type filter hook input priority -500; policy accept;
    meta l4proto sctp add @seen4 { ip saddr . sctp dport }
    meta l4proto sctp add @seen6 { ip6 saddr . sctp dport }
  }
}
`;

function run(file, args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    if (input !== undefined) child.stdin.end(input);
  });
}

// Source ports for UDP probes, never reused within a run, so no conntrack entry of an earlier
// probe (allowed under an earlier policy) makes a later one look established.
let nextUdpPort = 20000;
const udpSourcePort = () => (nextUdpPort = nextUdpPort >= 60000 ? 20000 : nextUdpPort + 1);

function tcpProbe(ip, port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: ip, port });
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), TIMEOUT_MS);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function udpProbe(ip, port) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
    const done = (ok) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), TIMEOUT_MS);
    sock.once('message', () => done(true));
    sock.once('error', () => done(false));
    sock.bind(udpSourcePort(), () => sock.send('probe', port, ip));
  });
}

const probe = (p) => (p.protocol === 'TCP' ? tcpProbe(p.ip, p.port) : udpProbe(p.ip, p.port));

function sctpSend(family, port, targets) {
  const args = [...(family === 6 ? ['-6'] : []), '-sY', '-Pn', '-n', '--send-ip', '-p', String(port), '--max-retries', '0', '--max-rtt-timeout', '100ms', ...targets];
  return run('nmap', args);
}

async function sctpSeen() {
  const seen = [];
  for (const set of ['seen4', 'seen6']) {
    const listed = JSON.parse(await run('nft', ['-j', 'list', 'set', 'inet', 'probe', set]));
    for (const o of listed.nftables) for (const e of o.set?.elem ?? []) seen.push(`${e.concat[0]} . ${e.concat[1]}`);
  }
  return seen;
}

async function answer(line) {
  const req = JSON.parse(line);
  switch (req.op) {
    case 'probe':
      return { id: req.id, results: await Promise.all(req.probes.map(probe)) };
    case 'sctp-send':
      await sctpSend(req.family, req.port, req.targets);
      return { id: req.id };
    case 'sctp-reset':
      await run('nft', ['-f', '-'], 'flush set inet probe seen4\nflush set inet probe seen6\n');
      return { id: req.id };
    case 'sctp-seen':
      return { id: req.id, seen: await sctpSeen() };
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

async function main() {
  await run('nft', ['-f', '-'], SEEN_TABLE);
  await Promise.all(
    PORTS.flatMap((port) => [
      new Promise((resolve, reject) => {
        const server = net.createServer((sock) => sock.on('error', () => {}).end());
        server.once('error', reject);
        server.listen({ host: '::', port, ipv6Only: false }, resolve);
      }),
      new Promise((resolve, reject) => {
        const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
        sock.on('message', (msg, from) => sock.send(msg, from.port, from.address));
        sock.once('error', reject);
        sock.bind(port, '::', resolve);
      }),
    ]),
  );
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    let id;
    try {
      id = JSON.parse(line).id;
    } catch {
      // answered below with the parse error
    }
    answer(line).then(
      (reply) => process.stdout.write(`${JSON.stringify(reply)}\n`),
      (err) => process.stdout.write(`${JSON.stringify({ id, error: String(err?.message ?? err) })}\n`),
    );
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`netpol-agent: ${err?.stack ?? err}\n`);
  process.exit(1);
});
