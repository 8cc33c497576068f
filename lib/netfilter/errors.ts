import type { ProcessOutput } from '../exec.ts';

/** A failed iptables-restore or nft run: which tool, the script it was given, and what it said. */
export class NetfilterError extends Error {
  readonly argv: readonly string[];
  readonly status: number | null;
  readonly stderr: string;
  readonly script: string;

  constructor(out: ProcessOutput, script: string) {
    const said = out.stderr.trim().split('\n').slice(-3).join(' | ');
    super(`${out.argv.join(' ')}: ${out.signal ? `killed by ${out.signal}` : `exit ${out.status}`}${said ? `: ${said}` : ''}`);
    this.name = 'NetfilterError';
    this.argv = out.argv;
    this.status = out.status;
    this.stderr = out.stderr;
    this.script = script;
  }
}
