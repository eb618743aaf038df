/**
 * Whether an error means our own database cannot be reached right now (refused, reset, shutting
 * down, too many connections) rather than that a query was wrong. Such failures are waited out,
 * never counted against a provider's retry budget nor reported as a bad request.
 */
import { ConnectionException } from '@mikro-orm/core';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATE classes 08 (connection exception) and 57P0x (operator intervention: shutdown, crash), 53300 too many connections */
const SQLSTATES = /^(08|57P0[1-3]|53300)/;

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof ConnectionException) return true;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SQLSTATES.test(code))) return true;
    if (
      typeof message === 'string' &&
      /Connection terminated|connection is closed|Client has encountered a connection error|timeout exceeded when trying to connect|Timeout acquiring a connection/i.test(
        message,
      )
    )
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
