/**
 * The one application error. Every layer throws it with a kind; the API maps kinds to HTTP
 * statuses in one place (api/middleware/problem.ts).
 */
export type ErrorKind =
  | 'malformed_request'
  | 'validation_failed'
  | 'unauthenticated'
  /** the password was right; the account has MFA on and the sign-in needs its code */
  | 'mfa_required'
  | 'forbidden'
  /** the tenant requires MFA and the user has not enabled it: they may only set it up */
  | 'mfa_setup_required'
  /** the tenant's shield refuses the client's address (403 `ip-blocked`) */
  | 'ip_blocked'
  /** the client's address is outside the tenant's IP allowlist (403 `ip-not-allowed`) */
  | 'ip_not_allowed'
  | 'quota_exceeded'
  | 'not_found'
  | 'conflict'
  /** a change that would leave a tenant without an OWNER */
  | 'last_owner'
  | 'payment_declined'
  | 'unprocessable'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

export interface FieldIssue {
  /** JSON pointer-ish path of the offending field, e.g. `owner.email` */
  field: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** Human explanation, safe to show to the caller. */
    readonly detail: string,
    /** extra members of the problem body: shown to the caller */
    readonly extras: { errors?: FieldIssue[]; [key: string]: unknown } = {},
    /** the underlying error, logged but never shown */
    options: { cause?: unknown } = {},
  ) {
    super(detail, options);
    this.name = 'AppError';
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} was not found`);
export const conflict = (detail: string, extras: Record<string, unknown> = {}) =>
  new AppError('conflict', detail, extras);
export const forbidden = (detail: string) => new AppError('forbidden', detail);

/**
 * Failure types that activities raise (as `ApplicationFailure` types) and workflows branch on —
 * never on message text. Every failure type used anywhere is in this one list.
 */
export const FAILURE_TYPES = {
  noCapacity: 'NoCapacity',
  podNotFound: 'PodNotFound',
  jobNotFound: 'JobNotFound',
  backupNotFound: 'BackupNotFound',
  /** the provider refused the operation: a retry cannot fix it */
  providerRejected: 'ProviderRejected',
  /** the provider failed in a way a retry may fix (timeout, 5xx, lost answer) */
  providerFailed: 'ProviderFailed',
  invalidPlanChange: 'InvalidPlanChange',
  tenantNotFound: 'TenantNotFound',
  invalidTenantTransition: 'InvalidTenantTransition',
} as const;
export type FailureType = (typeof FAILURE_TYPES)[keyof typeof FAILURE_TYPES];
