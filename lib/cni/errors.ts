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

/** Anything thrown becomes a CniError; foreign errors are code 999 and keep their cause. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) {
    const details = 'details' in err && typeof err.details === 'string' ? err.details : undefined;
    return new CniError(ErrorCode.internal, err.message, details, { cause: err });
  }
  return new CniError(ErrorCode.internal, String(err));
}

export const invalidConfig = (msg: string, details?: string) =>
  new CniError(ErrorCode.invalidConfig, msg, details);
