// The part of bun:ffi that lib/ip/netns-enter.ts uses (the project has no @types/bun).
declare module 'bun:ffi' {
  export const FFIType: { readonly i32: number };
  export function dlopen<S extends Record<string, { args: number[]; returns: number }>>(
    path: string,
    symbols: S,
  ): { symbols: { [K in keyof S]: (...args: number[]) => number }; close(): void };
}
