/**
 * JSON as Go's encoding/json writes it, so files we share with libcni (its result cache) are
 * byte-for-byte what libcni would write: map keys sorted by bytes, `<` `>` `&` U+2028 U+2029
 * escaped, no spaces. `sortKeys: false` keeps insertion order, as Go does for struct fields.
 */
export function goMarshal(value: unknown, options: { sortKeys?: boolean; indent?: string } = {}): string {
  const sortKeys = options.sortKeys ?? true;
  const indent = options.indent ?? '';
  const write = (v: unknown, depth: number): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'string') return goString(v);
    if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
    if (typeof v === 'boolean') return String(v);
    const nl = indent ? '\n' + indent.repeat(depth + 1) : '';
    const end = indent ? '\n' + indent.repeat(depth) : '';
    const sep = indent ? ': ' : ':';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[' + v.map((item) => nl + write(item, depth + 1)).join(',') + end + ']';
    }
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    if (sortKeys) entries.sort(([a], [b]) => compareBytes(a, b));
    return '{' + entries.map(([k, x]) => nl + goString(k) + sep + write(x, depth + 1)).join(',') + end + '}';
  };
  return write(value, 0);
}

/** Go sorts map keys by their UTF-8 bytes; for these keys that is code-point order. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function goString(s: string): string {
  const escaped = s.replace(/["\\\x00-\x1f<>&\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}"`;
}
