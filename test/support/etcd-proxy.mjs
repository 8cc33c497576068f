// A tiny HTTP proxy in front of etcd's JSON gateway, for the watch robustness tests:
//   node etcd-proxy.mjs LISTEN_PORT ETCD_PORT       (both on 127.0.0.1; run inside the test's namespace)
// Commands on stdin, one a line, act on the watch streams:
//   garbage | null  the next watch line with events is replaced by a broken JSON line (or `null`),
//                   then the connection is cut
//   cut             the next watch line with events is dropped and the connection cut
//   hold            every open watch stream is cut now, and new watch requests wait until `release`
//   release         forwards the held watch requests
// It prints `listening`, `watch open` for each watch stream, and `did <command>` when a command took effect.
import { request, createServer } from 'node:http';
import { createInterface } from 'node:readline';

const [listenPort, etcdPort] = process.argv.slice(2).map(Number);
let armed; // garbage | null | cut
let holding = false;
const held = [];
const streams = new Set();

function forward(req, res, body) {
  const up = request({ host: '127.0.0.1', port: etcdPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.headers);
    if (req.url !== '/v3/watch') return upRes.pipe(res);
    streams.add(res);
    console.log('watch open');
    res.on('close', () => (streams.delete(res), upRes.destroy()));
    let buffer = '';
    upRes.setEncoding('utf8');
    upRes.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl + 1);
        buffer = buffer.slice(nl + 1);
        if (armed && line.includes('"events"')) {
          const what = armed;
          armed = undefined;
          const replacement = what === 'garbage' ? '{"result":{"events":[{"kv":\n' : what === 'null' ? 'null\n' : '';
          res.write(replacement, () => res.socket?.destroy());
          console.log(`did ${what}`);
          upRes.destroy();
          return;
        }
        res.write(line);
      }
    });
    upRes.on('end', () => res.end());
  });
  up.on('error', () => res.destroy());
  up.end(body);
}

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (holding && req.url === '/v3/watch') held.push(() => forward(req, res, body));
    else forward(req, res, body);
  });
}).listen(listenPort, '127.0.0.1', () => console.log('listening'));

createInterface({ input: process.stdin }).on('line', (command) => {
  if (command === 'hold') {
    holding = true;
    for (const res of streams) res.socket?.destroy();
    console.log('did hold');
  } else if (command === 'release') {
    holding = false;
    for (const go of held.splice(0)) go();
    console.log('did release');
  } else armed = command;
});
