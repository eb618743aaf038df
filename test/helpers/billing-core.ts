/** Helpers for the pure billing core's table tests. */
import { billingErrorReason } from '../../src/domain/billing';

/** The stable reason of the billing error `fn` throws; `'none'` when it throws nothing. */
export function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return billingErrorReason(error);
  }
  return 'none';
}

/** A UTC instant from its ISO text. */
export const d = (iso: string) => new Date(iso);
