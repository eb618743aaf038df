/**
 * pino logger with secret redaction shared by the API, the worker and the CLI: JSON lines, or
 * pino-pretty's readable lines on a developer's terminal (see `wantsPrettyLogs`).
 */
import pino, { type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
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
  '*.STRIPE_SECRET_KEY',
  '*.STRIPE_WEBHOOK_SECRET',
  '*.clientSecret',
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
  // A serializer may be handed pino's own serialization of the error, with the original as `raw`.
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

/** Serializers of every logger: errors by the rules above. */
export const LOG_SERIALIZERS = { err: (err: unknown) => serializeError(err) };

/** The request log's line for one request, written when the response is done. */
export interface RequestLogLine {
  fields: {
    method: string;
    /** the route template (`/api/v1/cloudpods/:id`) of a matched route */
    route?: string;
    /** the path, without its query string, of a request no route matched */
    url?: string;
    status: number;
    durationMs: number;
    /** the tenant of a tenant principal */
    tenantId?: string;
    /** the client went away before the response was complete */
    aborted?: true;
  };
  /** `GET /api/v1/cloudpods/:id 200 12ms` */
  msg: string;
}

/** The parts of an Express request the request log reads. */
interface LoggedRequest {
  method?: string | undefined;
  originalUrl?: string;
  url?: string | undefined;
  readableAborted?: boolean;
  principal?: { tenantId: string | null } | undefined;
}

/** When the request log began timing a response (`res.locals[REQUEST_STARTED]`, ms since the epoch). */
export const REQUEST_STARTED = 'requestStartedAt';

/** The parts of an Express response the request log reads. */
interface LoggedResponse {
  statusCode: number;
  writableEnded: boolean;
  locals?: Record<string, unknown>;
}

const MAX_LOGGED_PATH = 200;

const requestLogLines = new WeakMap<object, RequestLogLine>();

/**
 * The one line logged per request: method, route template (or path), status, duration, tenant;
 * the request id comes from the request's child logger. Never headers, query strings or bodies.
 * Built once per response.
 */
export function requestLogLine(req: LoggedRequest, res: LoggedResponse): RequestLogLine {
  const known = requestLogLines.get(res);
  if (known) return known;
  const method = req.method ?? 'UNKNOWN';
  const template = res.locals?.route;
  const where =
    typeof template === 'string'
      ? { route: template }
      : { url: (req.originalUrl ?? req.url ?? '').split('?')[0]!.slice(0, MAX_LOGGED_PATH) };
  const status = res.statusCode;
  const started = res.locals?.[REQUEST_STARTED];
  const durationMs = typeof started === 'number' ? Date.now() - started : 0;
  const aborted = req.readableAborted === true || !res.writableEnded;
  const tenantId = req.principal?.tenantId ?? undefined;
  const line: RequestLogLine = {
    fields: {
      method,
      ...where,
      status,
      durationMs,
      ...(tenantId ? { tenantId } : {}),
      ...(aborted ? { aborted: true as const } : {}),
    },
    msg: `${method} ${where.route ?? where.url} ${status} ${durationMs}ms${aborted ? ' (aborted)' : ''}`,
  };
  requestLogLines.set(res, line);
  return line;
}

const TRUE = new Set(['true', '1']);
const FALSE = new Set(['false', '0']);

/**
 * Readable logs on a developer's terminal, JSON lines everywhere else. `LOG_PRETTY=true|1` or
 * `false|0` decides; otherwise pretty when NODE_ENV is not production, stdout is a TTY and CI is unset.
 */
export function wantsPrettyLogs(
  env: NodeJS.ProcessEnv = process.env,
  stdoutIsTTY: boolean = process.stdout.isTTY === true,
): boolean {
  const forced = env.LOG_PRETTY?.trim().toLowerCase() ?? '';
  if (TRUE.has(forced)) return true;
  if (FALSE.has(forced)) return false;
  const ci = env.CI !== undefined && env.CI !== '' && !FALSE.has(env.CI.trim().toLowerCase());
  return env.NODE_ENV !== 'production' && stdoutIsTTY && !ci;
}

/** The fields of a request line that its message already says; pretty output leaves them out. */
const REQUEST_LINE_ONLY = ['method', 'route', 'url', 'status', 'durationMs'] as const;

function isRequestLine(log: Record<string, unknown>): boolean {
  return (
    typeof log.reqId !== 'undefined' && typeof log.durationMs === 'number' && typeof log.status === 'number'
  );
}

/**
 * pino-pretty as a synchronous stream: one line per record (`[12:00:01.123] INFO (podplane-api):
 * GET /api/v1/tenants 200 3ms {"reqId":"…"}`), error stacks below their line. Synchronous, so
 * lines keep their order with stderr and none is lost when the process exits.
 */
function prettyDestination(out: pino.DestinationStream, toStdout: boolean): pino.DestinationStream {
  const format = prettyFactory({
    // pino-pretty colours when stdout supports it (a TTY, no NO_COLOR); never into another stream
    ...(toStdout ? {} : { colorize: false }),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
  });
  return {
    write(chunk: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(chunk) as Record<string, unknown>;
      } catch {
        out.write(chunk);
        return;
      }
      if (isRequestLine(record)) for (const key of REQUEST_LINE_ONLY) delete record[key];
      out.write(format(record));
    },
  };
}

/**
 * The logger of a process. Without a destination it writes to stdout, as JSON lines or, when
 * `pretty` (by default `wantsPrettyLogs()`), as pino-pretty lines. With a destination it writes
 * JSON lines there unless `pretty` is true.
 */
export function createLogger(
  opts: { level: string; name?: string; pretty?: boolean },
  destination?: pino.DestinationStream,
): Logger {
  const pretty = opts.pretty ?? (destination === undefined && wantsPrettyLogs());
  const stream = pretty
    ? prettyDestination(destination ?? pino.destination({ dest: 1, sync: true }), destination === undefined)
    : destination;
  return pino(
    {
      level: opts.level,
      name: opts.name ?? 'podplane',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: LOG_SERIALIZERS,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

export type { Logger };
