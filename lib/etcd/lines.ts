import { EtcdError } from './errors.ts';

/**
 * The newline-terminated lines of a byte stream (the JSON gateway's watch stream), trimmed, empty
 * ones skipped. A line longer than `maxBytes` is an error instead of an ever-growing buffer. The
 * caller parses each line where it owns the error; nothing here throws from an event listener.
 */
export async function* lines(stream: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
      if (pendingBytes + nl > maxBytes) throw tooLong(maxBytes);
      const line = Buffer.concat([...pending, buf.subarray(0, nl)]).toString('utf8').trim();
      pending = [];
      pendingBytes = 0;
      buf = buf.subarray(nl + 1);
      if (line) yield line;
    }
    pendingBytes += buf.length;
    if (pendingBytes > maxBytes) throw tooLong(maxBytes);
    if (buf.length) pending.push(buf);
  }
  // the gateway ends every message with a newline: an unterminated tail is a cut message, dropped
}

const tooLong = (maxBytes: number) => new EtcdError(`etcd sent a line longer than ${maxBytes} bytes`);
