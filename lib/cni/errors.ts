/** CNI well-known error codes (spec 1.1.0, section 5). */
export const ErrorCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  pluginNotAvailableLimitedConnectivity: 51,
  internal: 999,
} as const;

/** A failure the runtime sees as `{"code","msg","details"}`. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string | undefined): Record<string, unknown> {
    return {
      ...(cniVersion ? { cniVersion } : {}),
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** errno names of conditions that clear up by themselves: the runtime should retry (code 11). */
const TRANSIENT = new Set(['EAGAIN', 'EWOULDBLOCK', 'EBUSY', 'EINTR']);

/** A failed system call (`fs` and friends): `code` is an errno name and `syscall` is set. */
function isSystemError(err: Error): err is Error & { code: string; syscall: string } {
  const e = err as { code?: unknown; syscall?: unknown };
  return typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string';
}

/**
 * Anything thrown becomes a CniError: a failed system call (a dataDir that is a file, a full disk,
 * EACCES) is code 5, or 11 when it is transient, with the call's own message ("ENOTDIR: not a
 * directory, mkdir '/x'"); other foreign errors are code 999. Both keep their cause.
 */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error && isSystemError(err)) {
    return new CniError(TRANSIENT.has(err.code) ? ErrorCode.tryAgainLater : ErrorCode.ioFailure, err.message, undefined, { cause: err });
  }
  if (err instanceof Error) {
    const details = 'details' in err && typeof err.details === 'string' ? err.details : undefined;
    return new CniError(ErrorCode.internal, err.message, details, { cause: err });
  }
  return new CniError(ErrorCode.internal, String(err));
}

export const invalidConfig = (msg: string, details?: string) =>
  new CniError(ErrorCode.invalidConfig, msg, details);
