/**
 * The request id and the request log: `X-Request-Id` (the caller's when well-formed), a child
 * logger on `req.log` carrying the id and, once authenticated, the caller — made on first use, so
 * a request that logs nothing costs no logger — and one line per response (`requestLogLine`).
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { REQUEST_STARTED, requestLogLine, type Logger } from '../../logger';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** polled by probes and Prometheus: a line each would drown the rest */
const QUIET_PATHS = new Set(['/health', '/metrics']);

type Level = 'info' | 'warn' | 'error';

/** A 503 is expected degradation (a dependency down, logged once by the problem handler). */
function levelOf(status: number): Level {
  if (status === 503) return 'warn';
  if (status >= 500) return 'error';
  return status >= 400 ? 'warn' : 'info';
}

function bindingsOf(req: Request): Record<string, unknown> {
  const principal = req.principal;
  if (!principal) return { reqId: req.id };
  return principal.tenantId
    ? { reqId: req.id, tenantId: principal.tenantId, actorId: principal.actorId }
    : { reqId: req.id, actorId: principal.actorId, admin: true };
}

export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    res.locals[REQUEST_STARTED] = Date.now();
    let child: Logger | undefined;
    let boundTo: unknown;
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: true,
      get(): Logger {
        if (!child || boundTo !== req.principal) {
          boundTo = req.principal;
          child = logger.child(bindingsOf(req));
        }
        return child;
      },
    });
    if (!QUIET_PATHS.has(req.path)) {
      let logged = false;
      const done = () => {
        if (logged) return;
        logged = true;
        const level = levelOf(res.statusCode);
        if (!logger.isLevelEnabled(level)) return;
        const line = requestLogLine(req, res);
        logger[level]({ reqId: req.id, ...line.fields }, line.msg);
      };
      res.once('finish', done);
      res.once('close', done);
    }
    next();
  };
}
