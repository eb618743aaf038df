/** pino JSON logger with secret redaction shared by the API, the worker and the CLI. */
import pino, { type Logger } from 'pino';
import { DriverException } from '@mikro-orm/core';

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
  'tokenHash',
  'token_hash',
  '*.tokenHash',
  '*.token_hash',
  '*.*.tokenHash',
  '*.*.token_hash',
];

/** What identifies a database failure without carrying any of the data involved. */
const DATABASE_ERROR_FIELDS = [
  'code',
  'errno',
  'syscall',
  'severity',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'routine',
] as const;

/**
 * A database failure, from MikroORM (`DriverException`) or straight from pg (which sets
 * `severity`): its message and `detail` carry the SQL, its parameters and the failing row.
 */
function isDatabaseError(err: Error): boolean {
  return err instanceof DriverException || typeof (err as { severity?: unknown }).severity === 'string';
}

const MAX_CAUSE_DEPTH = 5;

/**
 * The `err` serializer of every logger. Database failures are logged by class, SQLSTATE, constraint,
 * table and column — never their message, `detail`, `where` or `hint`, which quote statement
 * parameters and whole rows (token hashes, prefixes, emails). Causes are serialized by the same
 * rules instead of being folded into the message, so a wrapped database error cannot leak either.
 */
export function serializeError(value: unknown, depth = 0): unknown {
  // pino-http hands its serializer pino's own serialization of the error, with the original as `raw`.
  const raw = (value as { raw?: unknown } | null)?.raw;
  const err = value instanceof Error ? value : raw instanceof Error ? raw : undefined;
  if (!err) return value;
  const frames = (err.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
  const out: Record<string, unknown> = { type: err.constructor.name || err.name };
  if (isDatabaseError(err)) {
    for (const field of DATABASE_ERROR_FIELDS) {
      const v = (err as unknown as Record<string, unknown>)[field];
      if (v !== undefined && v !== null && v !== '') out[field] = v;
    }
    out.stack = frames;
  } else {
    for (const [key, v] of Object.entries(err)) if (key !== 'cause') out[key] = v;
    out.message = err.message;
    out.stack = err.stack;
  }
  if (err.cause !== undefined && depth < MAX_CAUSE_DEPTH) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** Serializers shared by the base logger and pino-http (which would otherwise install its own `err`). */
export const LOG_SERIALIZERS = { err: (err: unknown) => serializeError(err) };

export function createLogger(
  opts: { level: string; name?: string },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name ?? 'podplane',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: LOG_SERIALIZERS,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
