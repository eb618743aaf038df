/** Errors providers throw: the activity layer maps them to retryable or non-retryable failures. */
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly operation: string,
    message: string,
    /** false for errors a retry cannot fix (bad request, locked VM, missing template) */
    readonly retryable: boolean,
    readonly code?: string,
    /**
     * How long the provider asked us to wait before trying again (its `Retry-After`), in ms;
     * a retry sooner than this is wasted. Undefined when it did not say.
     */
    readonly retryAfterMs?: number,
  ) {
    super(`${provider} ${operation}: ${message}`);
    this.name = 'ProviderError';
  }
}
