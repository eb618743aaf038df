/** How billing activities tell Temporal which failures a retry cannot change. */
import { ApplicationFailure } from '@temporalio/common';
import { AppError } from '../domain/errors';

/**
 * Runs `fn`; an `AppError` (a business answer: a slug taken, a quota exceeded, a customer gone)
 * becomes a non-retryable failure typed `billing.<kind>`, except `unavailable` (a dependency
 * down), which a retry may well get past. Anything else is retried.
 */
export async function refusalsFinal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError && err.kind !== 'unavailable') {
      throw ApplicationFailure.nonRetryable(err.detail, `billing.${err.kind}`);
    }
    throw err;
  }
}
