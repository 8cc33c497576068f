import * as z from 'zod/mini';
import { lazy } from './lazy.ts';

/**
 * Leaf schemas shared by the config and result schemas. A zod schema is immutable, so one instance
 * serves every field of its shape: in the binary zod runs in the interpreter and each construction
 * costs ~20 µs, which a config with dozens of fields pays on every call.
 */
export const string = lazy(() => z.string());
export const optString = lazy(() => z.optional(string()));
/** Go's decoder takes null as absent. */
export const nullishString = lazy(() => z.optional(z.nullable(string())));
export const flag = lazy(() => z.optional(z.nullable(z.boolean())));
export const optBoolean = lazy(() => z.optional(z.boolean()));
export const optNumber = lazy(() => z.optional(z.number()));
export const optInt = lazy(() => z.optional(z.number().check(z.int())));
