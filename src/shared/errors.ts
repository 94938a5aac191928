// Domain errors carry a stable `code` (jose-style) that callers switch on; the HTTP or CLI edge
// decides how to present them. Messages are one line and safe to show to an operator.
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_INVALID_INPUT'
  | 'ERR_DUPLICATE'
  | 'ERR_NOT_FOUND'
  | 'ERR_WEAK_PASSWORD'
  | 'ERR_DATA_DIR_LOCKED'
  | 'ERR_SCHEMA_BEHIND'
  | 'ERR_SECRET_MISMATCH'
  | 'ERR_DATABASE_UNAVAILABLE'
  | 'ERR_TOO_LARGE'
  | 'ERR_CLIENT_GONE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_UPSTREAM_FAILED'
  | 'ERR_MAIL_DISABLED'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_CONFLICT'
  | 'ERR_IDEMPOTENCY_MISMATCH'
  | 'ERR_RATE_LIMITED';

/** One invalid field of a request: which one, and what is wrong with it. */
export interface FieldError {
  readonly field: string;
  readonly detail: string;
}

export class PosternError extends Error {
  readonly code: ErrorCode;
  /** The fields at fault, when the error is about input (an edge may list them). */
  readonly fields: readonly FieldError[];

  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { fields?: readonly FieldError[] }) {
    super(message, options);
    this.code = code;
    this.fields = options?.fields ?? [];
    this.name = 'PosternError';
  }
}

/** Invalid input, said in one line; `field` names the input at fault when there is one. */
export function invalid(message: string, field?: string): never {
  throw new PosternError('ERR_INVALID_INPUT', message, field ? { fields: [{ field, detail: message }] } : {});
}

export class ConfigError extends PosternError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('ERR_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
    this.name = 'ConfigError';
  }
}

export function isPosternError(error: unknown, code?: ErrorCode): error is PosternError {
  return error instanceof PosternError && (code === undefined || error.code === code);
}
