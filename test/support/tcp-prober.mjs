// A TCP prober for netpol tests, run inside a pod namespace: `node tcp-prober.mjs IP PORT`.
// Keeps CONCURRENCY connects to IP:PORT in flight, each given up after TIMEOUT_MS, until stdin ends.
// Each line "mark" on stdin prints {"attempts":N,"connected":M} for the period since the last mark;
// the end of stdin prints the last period and exits. Only Node's own modules: no build step.
import net from 'node:net';
import readline from 'node:readline';

const [ip, portText] = process.argv.slice(2);
const port = Number(portText);
const CONCURRENCY = 16;
const TIMEOUT_MS = 25;
let attempts = 0;
let connected = 0;
let running = true;

function attempt() {
  if (!running) return;
  attempts++;
  const socket = net.connect({ host: ip, port });
  const timer = setTimeout(() => socket.destroy(), TIMEOUT_MS);
  socket.once('connect', () => {
    connected++;
    socket.destroy();
  });
  socket.once('error', () => {});
  socket.once('close', () => {
    clearTimeout(timer);
    setImmediate(attempt);
  });
}

const report = () => {
  process.stdout.write(JSON.stringify({ attempts, connected }) + '\n');
  attempts = 0;
  connected = 0;
};
for (let i = 0; i < CONCURRENCY; i++) attempt();
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (l) => l.trim() === 'mark' && report());
lines.on('close', () => {
  running = false;
  report();
  process.exit(0);
});
