/**
 * The HTTP exchange the REST providers share: a request timeout, network errors and 5xx answers
 * retryable, 4xx not, and the provider's secret scrubbed from every message it produces.
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

function networkMessage(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'request timed out';
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
}

export class ProviderHttp {
  constructor(private readonly opts: ProviderHttpOptions) {}

  fail(op: string, message: string, retryable: boolean, code: string): ProviderError {
    return new ProviderError(
      this.opts.provider,
      op,
      message.split(this.opts.secret).join('***'),
      retryable,
      code,
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
    let text: string;
    try {
      const res = await this.opts.fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      ({ status, statusText } = res);
      text = await res.text();
    } catch (err) {
      throw this.fail(op, `${what}: ${networkMessage(err)}`, true, 'NETWORK');
    }
    if (status < 200 || status >= 300) {
      throw this.fail(
        op,
        `${what}: ${status} ${this.opts.errorMessage(statusText, text)}`,
        status >= 500,
        `HTTP_${status}`,
      );
    }
    return text;
  }
}
