import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Paths pino censors wherever they appear in a log object (CONVENTIONS §8).
const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'params.code',
  'query.code',
  '*.code_verifier',
  'code_verifier',
  'token',
  '*.token',
  'access_token',
  'refresh_token',
  'id_token',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  'cookie',
  'privateJwk',
  '*.privateJwk',
];

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: 2 } } });
  }
  return pino(base, pino.destination({ fd: 1, sync: false }));
}
