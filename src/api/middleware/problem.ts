/**
 * RFC 9457 problem+json for every error, with one mapping from error kinds (and PostgreSQL
 * error codes) to HTTP statuses. Nothing internal — stack, SQL, provider payloads — leaves here.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import {
  DeadlockException,
  ForeignKeyConstraintViolationException,
  OptimisticLockError,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import { isDatabaseUnavailable } from '../../db/unavailable';
import { AppError, type ErrorKind } from '../../domain/errors';
import type { Logger } from '../../logger';

const KINDS: Record<ErrorKind, { status: number; title: string }> = {
  malformed_request: { status: 400, title: 'Malformed request' },
  validation_failed: { status: 400, title: 'Validation failed' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  mfa_required: { status: 401, title: 'MFA code required' },
  payment_declined: { status: 402, title: 'Payment declined' },
  forbidden: { status: 403, title: 'Forbidden' },
  mfa_setup_required: { status: 403, title: 'MFA setup required' },
  ip_blocked: { status: 403, title: 'Address blocked' },
  ip_not_allowed: { status: 403, title: 'Address not allowed' },
  quota_exceeded: { status: 403, title: 'Quota exceeded' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  last_owner: { status: 409, title: 'Last owner' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  unprocessable: { status: 422, title: 'Unprocessable request' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal server error' },
  unavailable: { status: 503, title: 'Service unavailable' },
};

export const PROBLEM_BASE = 'https://podplane.dev/problems/';

/** Seconds a client is told to wait on a 503 when the thrower did not say otherwise. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

export function statusOf(kind: ErrorKind): number {
  return KINDS[kind].status;
}

export function sendProblem(res: Response, requestId: string, err: AppError): void {
  const { status, title } = KINDS[err.kind];
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="podplane"');
  // Every 503 says when to come back; a route that knows better sets the header itself first.
  if (err.kind === 'unavailable' && !res.hasHeader('Retry-After')) {
    res.setHeader('Retry-After', String(DEFAULT_RETRY_AFTER_SECONDS));
  }
  res
    .status(status)
    .type('application/problem+json')
    .json({
      type: `${PROBLEM_BASE}${err.kind.replace(/_/g, '-')}`,
      title,
      status,
      detail: err.detail,
      instance: res.req.originalUrl.split('?')[0],
      request_id: requestId,
      ...err.extras,
    });
}

/** SQLSTATEs of a transaction that lost to a concurrent one: 40001 serialization failure, 40P01 deadlock, 55P03 lock not available. */
const CONCURRENCY_SQLSTATES = new Set(['40001', '40P01', '55P03']);

function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** What http-errors (body-parser, the router) mark as the client's fault. */
function clientHttpError(err: unknown): number | undefined {
  const { status, expose } = (err ?? {}) as { status?: unknown; expose?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true ? status : undefined;
}

/** The database itself is out of reach (refused, reset, shut down, too many connections). */
export function isDatabaseLost(err: unknown): boolean {
  return !(err instanceof AppError) && isDatabaseUnavailable(err);
}

/** Translates errors that are not ours yet (body parser, router, database) into AppErrors. */
export function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof UniqueConstraintViolationException) {
    return new AppError('conflict', 'a resource with the same unique value already exists');
  }
  if (err instanceof ForeignKeyConstraintViolationException) {
    return new AppError('unprocessable', 'a referenced resource does not exist');
  }
  if (
    err instanceof OptimisticLockError ||
    err instanceof DeadlockException ||
    CONCURRENCY_SQLSTATES.has(sqlStateOf(err) ?? '')
  ) {
    return new AppError(
      'conflict',
      'the request conflicted with a concurrent change and was not applied; retry it',
      {},
      { cause: err },
    );
  }
  if (isDatabaseLost(err)) {
    return new AppError(
      'unavailable',
      'the database is unreachable; retry after the delay in Retry-After',
      {},
      { cause: err },
    );
  }
  const bodyParserType = (err as { type?: unknown } | null)?.type;
  if (bodyParserType === 'entity.parse.failed')
    return new AppError('malformed_request', 'the body is not valid JSON');
  if (bodyParserType === 'entity.too.large')
    return new AppError('payload_too_large', 'the body exceeds the size limit');
  if (bodyParserType === 'encoding.unsupported' || bodyParserType === 'charset.unsupported') {
    return new AppError('unsupported_media_type', 'the body encoding is not supported');
  }
  // The router could not percent-decode a path parameter (it marks that URIError with status 400).
  if (err instanceof URIError && (err as { status?: unknown }).status === 400) {
    return new AppError('malformed_request', 'the path is not valid percent-encoding (RFC 3986)');
  }
  const clientStatus = clientHttpError(err);
  // zlib refused the body (gzip/deflate/br data that does not inflate), or the body was cut short.
  if (clientStatus === 400) {
    return new AppError(
      'malformed_request',
      'the body could not be read with its Content-Encoding and length',
    );
  }
  if (clientStatus === 413) return new AppError('payload_too_large', 'the body exceeds the size limit');
  if (clientStatus === 415)
    return new AppError('unsupported_media_type', 'the body encoding is not supported');
  return undefined;
}

/**
 * One log line per database outage, not one per request: the first failure is logged as an error,
 * later ones are not until a request succeeds against the database again (or nothing failed for
 * OUTAGE_QUIET_MS, which starts a new outage). Module state: one process, one database.
 */
const OUTAGE_QUIET_MS = 60_000;
const outage = { since: 0, lastFailure: 0 };

function noteDatabaseLost(log: Logger, err: unknown): void {
  const now = Date.now();
  if (outage.since === 0 || now - outage.lastFailure > OUTAGE_QUIET_MS) {
    outage.since = now;
    log.error({ err }, 'database unreachable');
  }
  outage.lastFailure = now;
}

/** Called when a request got an answer from the database; closes the current outage, if any. */
export function noteDatabaseReachable(log: Logger): void {
  if (outage.since === 0) return;
  log.warn({ outageMs: Date.now() - outage.since }, 'database reachable again');
  outage.since = 0;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `no route for ${req.method} ${req.path}`));
};

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const known = toAppError(err);
  if (known) {
    if (isDatabaseLost(err)) noteDatabaseLost(req.log, err);
    else if (known.kind === 'internal' || known.kind === 'unavailable') req.log.warn({ err }, known.detail);
    sendProblem(res, req.id, known);
    return;
  }
  req.log.error({ err }, 'unhandled error');
  sendProblem(
    res,
    req.id,
    new AppError('internal', `an unexpected error occurred; quote request id ${req.id} when reporting it`),
  );
};
