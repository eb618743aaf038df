/** Identity entities: users, their memberships of tenants, and their sign-in sessions. */
import { Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { MEMBERSHIP_ROLES, type MembershipRole } from '../../domain/permissions';
import { Row } from './base';
import { Tenant } from './tenancy';

/**
 * A person who signs in with an email address and a password. Emails are stored in lower case
 * and unique however they are spelled (the unique index is on `lower(email)`).
 */
@Entity({ tableName: 'users' })
@Unique({
  name: 'users_email_lower_unique',
  expression: 'create unique index "users_email_lower_unique" on "users" (lower("email"))',
})
export class User extends Row {
  static override readonly idKind = 'user' as const;

  @Property({ type: 'string', length: 320 })
  email!: string;

  /** the argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): its parameters travel with it */
  @Property({ type: 'string', length: 255 })
  passwordHash!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  passwordChangedAt: Date & Opt = new Date();

  /** may act for the platform (tenants, nodes, operations) when signed in without a tenant */
  @Property({ type: 'boolean' })
  platformAdmin: boolean & Opt = false;

  /** set: the user can no longer sign in, and their sessions stop working */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  disabledAt?: Date | null;

  /** wrong passwords in a row since the last successful login (or the last lock) */
  @Property({ type: 'integer' })
  failedLoginCount: number & Opt = 0;

  /** set: logins are refused without checking the password until then; attempts never extend it */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lockedUntil?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastLoginAt?: Date | null;

  /**
   * the TOTP secret, sealed (AES-256-GCM under TENANT_SECRETS_ENCRYPTION_KEY, bound to this user);
   * set from MFA setup on, checked at sign-in only once `mfaEnabledAt` is set
   */
  @Property({ type: 'text', nullable: true })
  mfaSecret?: string | null;

  /** set: MFA is on, and every sign-in needs a TOTP or recovery code */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  mfaEnabledAt?: Date | null;

  /** the last TOTP time step accepted: a code of this step or an earlier one is refused (no replay) */
  @Property({ type: 'integer', nullable: true })
  mfaLastStep?: number | null;

  /** hex SHA-256 of each recovery code not used yet */
  @Property({ type: 'text[]', defaultRaw: "'{}'" })
  mfaRecoveryCodes: string[] & Opt = [];
}

/** A user's role in one tenant; a user has at most one membership per tenant. */
@Entity({ tableName: 'memberships' })
@Unique({ properties: ['user', 'tenant'] })
export class Membership extends Row {
  static override readonly idKind = 'membership' as const;

  @ManyToOne({ entity: () => User, deleteRule: 'cascade' })
  user!: User;

  @Index()
  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Enum({ items: () => MEMBERSHIP_ROLES, type: 'string' })
  role!: MembershipRole;
}

/** Why a session ended before its expiry. */
export const SESSION_REVOKE_REASONS = [
  'LOGOUT',
  'REVOKED',
  'PASSWORD_CHANGED',
  'REFRESH_TOKEN_REUSED',
] as const;
export type SessionRevokeReason = (typeof SESSION_REVOKE_REASONS)[number];

/**
 * One refresh token of a sign-in. A login makes the first row of a family (`familyId` is that
 * row's own id, which is the session id users and access tokens see); each refresh marks the row
 * it presented as rotated and adds a child row with a new token to the same family. A rotated
 * token presented again means it was copied: the whole family is revoked. Revoking a family sets
 * `revokedAt` on every row of it, the first row included, so checking that one row by primary key
 * tells whether an access token's session still stands. Sessions belong to a user, who may act in
 * several tenants: they are not tenant-filtered, and every query of them names the user.
 */
@Entity({ tableName: 'sessions' })
@Index({ properties: ['user', 'revokedAt'] })
export class Session extends Row {
  static override readonly idKind = 'session' as const;

  @ManyToOne({ entity: () => User, deleteRule: 'cascade' })
  user!: User;

  /** the tenant the session acts in; null for a platform administrator acting for the platform */
  @ManyToOne({ entity: () => Tenant, nullable: true, deleteRule: 'cascade' })
  tenant?: Tenant | null;

  /** the id of the family's first row */
  @Index()
  @Property({ type: 'string', length: 40 })
  familyId!: string;

  /** the row whose refresh produced this one; null for the first row of a family */
  @ManyToOne({ entity: () => Session, nullable: true, deleteRule: 'set null' })
  parent?: Session | null;

  /** hex SHA-256 of the refresh token; the token itself is never stored */
  @Property({ type: 'string', length: 64, unique: true })
  refreshTokenHash!: string;

  /** set when this row's refresh token was exchanged for the next one */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  rotatedAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  revokedAt?: Date | null;

  @Enum({ items: () => SESSION_REVOKE_REASONS, type: 'string', nullable: true })
  revokeReason?: SessionRevokeReason | null;

  /** every row of a family ends with the first: a refresh never extends a sign-in */
  @Index()
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;

  @Property({ type: 'string', length: 45, nullable: true })
  createdIp?: string | null;

  @Property({ type: 'string', length: 500, nullable: true })
  createdUserAgent?: string | null;

  /** on a family's first row: when the session last refreshed or made a request (at most once a minute) */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastUsedAt?: Date | null;
}
