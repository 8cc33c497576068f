import type { Exec, ProcessOutput } from '../exec.ts';
import { ProcessError } from '../exec.ts';
import { batchFailures, IpBatchError, linkGone, toolArgv, type Iproute2Tool } from './ip.ts';

export interface ReadBatchOptions {
  /** ip, bridge or tc; ip by default. */
  tool?: Iproute2Tool;
  netns?: string;
  /** Add -d (details: link kinds, peers, tbf options). */
  details?: boolean;
  /** `-6`: a batch line cannot choose the family, and `route show` reads IPv4 without it. */
  family?: 6;
}

/**
 * Several `show` reads in one `TOOL [-d] -json -force -batch -` spawn: one array per line, in the
 * order asked. A read of an object that does not exist ("Cannot find device", "does not exist")
 * fails alone and reads as `[]`; any other failure throws the typed batch error of its line.
 */
export async function readBatch(exec: Exec, lines: readonly string[], options: ReadBatchOptions = {}): Promise<unknown[][]> {
  if (lines.length === 0) return [];
  const tool = options.tool ?? 'ip';
  const argv = [...toolArgv(tool, options.netns), ...(options.details ? ['-d'] : []), ...(options.family === 6 ? ['-6'] : []), '-json', '-force', '-batch', '-'];
  const out = await exec.runAsync(argv, { input: lines.join('\n') + '\n', allowFailure: true });
  return parseReadBatch(tool, lines, out);
}

/**
 * What readBatch makes of a finished read batch (pure). Each successful show line prints one JSON
 * array; a failed one prints nothing, so the arrays are handed to the lines that did not fail.
 */
export function parseReadBatch(tool: Iproute2Tool, lines: readonly string[], out: ProcessOutput): unknown[][] {
  const failures = batchFailures(lines, out.stderr);
  if (out.status !== 0) {
    if (failures.length === 0) throw new ProcessError(out);
    const real = failures.find((f) => !linkGone(f.reason));
    if (real) throw new IpBatchError(lines, out, tool, real);
  }
  const failed = new Set(failures.map((f) => f.line));
  const arrays = splitJsonArrays(out.stdout);
  const expected = lines.length - failed.size;
  if (arrays.length !== expected) throw new Error(`${tool} -json -batch: ${arrays.length} arrays for ${expected} successful reads`);
  return lines.map((_, i) => (failed.has(i + 1) ? [] : arrays.shift()!));
}

/**
 * The JSON arrays of a `-json -batch` run, one per line: without `-pretty` each show prints its array
 * on one line, and JSON strings cannot hold a raw newline, so no text inside one can split it.
 */
export function splitJsonArrays(stdout: string): unknown[][] {
  const arrays = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  if (!arrays.every(Array.isArray)) throw new Error('-json -batch printed something other than arrays');
  return arrays;
}
