import { CniError, ErrorCode } from './errors.ts';

/** Keys every plugin accepts in CNI_ARGS, as the Go plugins embed them. */
const ALWAYS_KNOWN = ['IgnoreUnknown', 'K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'];

const badArgs = (msg: string) => new CniError(ErrorCode.invalidEnvironment, `CNI_ARGS: ${msg}`);

/** How strictly `splitCniArgs` reads pairs, and what it throws for one it refuses. */
export interface PairRule {
  /** Refuse an empty key or value, as cnitool's parseArgs does (libcni's LoadArgs takes `K=`). */
  nonEmpty?: boolean;
  invalid?: (pair: string) => Error;
}

/**
 * The one reader of `K=V;K2=V2`: every pair must have exactly one '=' (libcni's LoadArgs), and with
 * `nonEmpty` a key and a value. Refused pairs are code 4 unless `rule.invalid` says otherwise.
 */
export function splitCniArgs(raw: string, rule: PairRule = {}): [string, string][] {
  if (raw === '') return [];
  const invalid = rule.invalid ?? ((pair: string) => badArgs(`invalid pair "${pair}"`));
  return raw.split(';').map((pair) => {
    const kv = pair.split('=');
    if (kv.length !== 2 || (rule.nonEmpty && (!kv[0] || !kv[1]))) throw invalid(pair);
    return [kv[0]!, kv[1]!];
  });
}

function parseBool(pair: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw badArgs(`invalid boolean in pair "${pair}"`);
}

/**
 * The CNI_ARGS a plugin knows, by key (case-sensitive, as in Go). Unknown keys are an error
 * unless IgnoreUnknown is 1/true.
 */
export function knownCniArgs(raw: string, known: readonly string[]): Record<string, string> {
  const allowed = new Set([...ALWAYS_KNOWN, ...known]);
  const out: Record<string, string> = {};
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const [key, value] of splitCniArgs(raw)) {
    if (!allowed.has(key)) {
      unknown.push(`${key}=${value}`);
      continue;
    }
    if (key === 'IgnoreUnknown') ignoreUnknown = parseBool(`${key}=${value}`, value);
    out[key] = value;
  }
  if (unknown.length > 0 && !ignoreUnknown) throw badArgs(`unknown args ${JSON.stringify(unknown)}`);
  return out;
}
