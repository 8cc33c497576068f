// Runs ipBatchInNetns under bun (argv: netns path, lines JSON, sysctls JSON), printing its stdout or
// `error: <message>`: the test drives the setns path this way and the nsenter path in-process (Node).
import { processExec } from '../../lib/exec.ts';
import { ipBatchInNetns } from '../../lib/ip/netns-batch.ts';

const [netns = '', lines = '[]', sysctls = '[]'] = process.argv.slice(2);
try {
  process.stdout.write(await ipBatchInNetns(processExec, netns, JSON.parse(lines), JSON.parse(sysctls)));
} catch (err) {
  process.stdout.write(`error: ${(err as Error).message}`);
}
