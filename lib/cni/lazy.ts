/**
 * Defers building a value until first use. Schemas are built this way: constructing a zod schema
 * costs ~0.1–0.3 ms, and a VERSION call or a plugin that never parses a prevResult should not pay
 * for schemas it does not use.
 */
export function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}
