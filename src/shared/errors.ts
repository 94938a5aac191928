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
  | 'ERR_DATABASE_UNAVAILABLE';

export class PosternError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'PosternError';
  }
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
