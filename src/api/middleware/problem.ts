/**
 * RFC 9457 problem+json for every error, with one mapping from error kinds (and PostgreSQL
 * error codes) to HTTP statuses. Nothing internal — stack, SQL, provider payloads — leaves here.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { UniqueConstraintViolationException, ForeignKeyConstraintViolationException } from '@mikro-orm/core';
import { AppError, type ErrorKind } from '../../domain/errors';

const KINDS: Record<ErrorKind, { status: number; title: string }> = {
  malformed_request: { status: 400, title: 'Malformed request' },
  validation_failed: { status: 400, title: 'Validation failed' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  quota_exceeded: { status: 403, title: 'Quota exceeded' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  unprocessable: { status: 422, title: 'Unprocessable request' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal server error' },
  unavailable: { status: 503, title: 'Service unavailable' },
};

export const PROBLEM_BASE = 'https://podplane.dev/problems/';

export function statusOf(kind: ErrorKind): number {
  return KINDS[kind].status;
}

export function sendProblem(res: Response, requestId: string, err: AppError): void {
  const { status, title } = KINDS[err.kind];
  if (err.kind === 'unauthenticated') res.setHeader('WWW-Authenticate', 'Bearer realm="podplane"');
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

/** Translates errors that are not ours yet (body parser, database) into AppErrors. */
export function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof UniqueConstraintViolationException) {
    return new AppError('conflict', 'a resource with the same unique value already exists');
  }
  if (err instanceof ForeignKeyConstraintViolationException) {
    return new AppError('unprocessable', 'a referenced resource does not exist');
  }
  const bodyParserType = (err as { type?: unknown } | null)?.type;
  if (bodyParserType === 'entity.parse.failed')
    return new AppError('malformed_request', 'the body is not valid JSON');
  if (bodyParserType === 'entity.too.large')
    return new AppError('payload_too_large', 'the body exceeds the size limit');
  if (bodyParserType === 'encoding.unsupported' || bodyParserType === 'charset.unsupported') {
    return new AppError('unsupported_media_type', 'the body encoding is not supported');
  }
  return undefined;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `no route for ${req.method} ${req.path}`));
};

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const known = toAppError(err);
  if (known) {
    if (known.kind === 'internal' || known.kind === 'unavailable') req.log.warn({ err }, known.detail);
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
