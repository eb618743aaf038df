/** Errors providers throw: the activity layer maps them to retryable or non-retryable failures. */
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly operation: string,
    message: string,
    /** false for errors a retry cannot fix (bad request, locked VM, missing template) */
    readonly retryable: boolean,
    readonly code?: string,
  ) {
    super(`${provider} ${operation}: ${message}`);
    this.name = 'ProviderError';
  }
}
