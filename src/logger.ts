/** pino JSON logger with secret redaction shared by the API, the worker and the CLI. */
import pino, { type Logger } from 'pino';

/** Paths pino blanks out wherever they appear (headers, bodies, activity inputs). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'authorization',
  'cookie',
  'password',
  'token',
  'secret',
  '*.authorization',
  '*.cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiToken',
  '*.accessToken',
  '*.refreshToken',
  '*.jwtSecret',
  '*.JWT_SECRET',
  '*.cardNumber',
  '*.cvc',
  '*.*.password',
  '*.*.token',
  '*.*.secret',
  '*.*.cardNumber',
  '*.*.cvc',
];

export function createLogger(
  opts: { level: string; name?: string },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name ?? 'podplane',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
