/**
 * The HTTP exchange the REST providers share: a request timeout; network errors, 5xx answers and
 * the 4xx answers that mean "not now" retryable, other 4xx not; the server's `Retry-After` kept on
 * the error; and the provider's secret scrubbed from every message it produces.
 */
import { ProviderError } from './errors';

export interface ProviderHttpOptions {
  provider: string;
  fetch: typeof fetch;
  timeoutMs: number;
  /** never appears in an error message, even if a server or proxy echoes it */
  secret: string;
  /** the provider's own error text from a failed response */
  errorMessage: (statusText: string, body: string) => string;
}

/**
 * 4xx answers that refuse the request for now rather than for good: 408 Request Timeout,
 * 409 Conflict (a concurrent change, a lock held), 423 Locked, 429 Too Many Requests.
 */
const RETRYABLE_4XX = new Set([408, 409, 423, 429]);

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE_4XX.has(status);
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as milliseconds from `now`: delta-seconds or an HTTP-date
 * (a date already past is 0). Undefined when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function networkMessage(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'request timed out';
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
}

export class ProviderHttp {
  constructor(private readonly opts: ProviderHttpOptions) {}

  fail(op: string, message: string, retryable: boolean, code: string, retryAfterMs?: number): ProviderError {
    return new ProviderError(
      this.opts.provider,
      op,
      message.split(this.opts.secret).join('***'),
      retryable,
      code,
      retryAfterMs,
    );
  }

  /** Sends the request and returns the body of a 2xx answer; anything else is a ProviderError. */
  async send(
    op: string,
    what: string,
    req: { url: string; method: string; headers: Record<string, string>; body?: string | undefined },
  ): Promise<string> {
    let status: number;
    let statusText: string;
    let retryAfter: string | null;
    let text: string;
    try {
      const res = await this.opts.fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      ({ status, statusText } = res);
      retryAfter = res.headers.get('retry-after');
      text = await res.text();
    } catch (err) {
      throw this.fail(op, `${what}: ${networkMessage(err)}`, true, 'NETWORK');
    }
    if (status < 200 || status >= 300) {
      const retryable = isRetryableStatus(status);
      throw this.fail(
        op,
        `${what}: ${status} ${this.opts.errorMessage(statusText, text)}`,
        retryable,
        `HTTP_${status}`,
        retryable ? parseRetryAfter(retryAfter) : undefined,
      );
    }
    return text;
  }
}
