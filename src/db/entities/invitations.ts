/**
 * Single-use tokens mailed to people: invitations to join a tenant with a role, and password
 * resets. Only the SHA-256 of each token is stored; a row is used at most once (`acceptedAt`,
 * `usedAt`) and only before `expiresAt`.
 */
import { Entity, Enum, Index, ManyToOne, Property } from '@mikro-orm/core';
import { MEMBERSHIP_ROLES, type MembershipRole } from '../../domain/permissions';
import { Row } from './base';
import { User } from './identity';
import { Tenant } from './tenancy';

/**
 * An invitation of an email address to a tenant with a role: the tenant's owner at onboarding,
 * or someone an OWNER or ADMIN invited. Accepting it creates the user (or checks the existing
 * user's password) and the membership. A newer invitation for the same email revokes the older.
 */
@Entity({ tableName: 'invitations' })
@Index({ properties: ['tenant', 'email'] })
export class Invitation extends Row {
  static override readonly idKind = 'invitation' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** lower case, as users' emails are compared */
  @Property({ type: 'string', length: 320 })
  email!: string;

  @Enum({ items: () => MEMBERSHIP_ROLES, type: 'string' })
  role!: MembershipRole;

  /** hex SHA-256 of the token; the token itself is only in the mail */
  @Property({ type: 'string', length: 64, unique: true })
  tokenHash!: string;

  /** null: the platform invited the tenant's owner at onboarding */
  @ManyToOne({ entity: () => User, nullable: true, deleteRule: 'set null' })
  invitedBy?: User | null;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  acceptedAt?: Date | null;

  /** the user who accepted it (new or existing) */
  @ManyToOne({ entity: () => User, nullable: true, deleteRule: 'set null' })
  acceptedBy?: User | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  revokedAt?: Date | null;
}

/**
 * A password reset asked for by email. Confirming one sets the password, ends every session of
 * the user and uses up every other reset of theirs still open. Not tenant-scoped: a user may
 * belong to several tenants (or none); every query names the token hash or the user.
 */
@Entity({ tableName: 'password_reset_tokens' })
@Index({ properties: ['user', 'usedAt'] })
export class PasswordResetToken extends Row {
  static override readonly idKind = 'passwordReset' as const;

  @ManyToOne({ entity: () => User, deleteRule: 'cascade' })
  user!: User;

  /** hex SHA-256 of the token; the token itself is only in the mail */
  @Property({ type: 'string', length: 64, unique: true })
  tokenHash!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;

  /** set once: the reset was confirmed with this token, or another reset of the user's superseded it */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  usedAt?: Date | null;

  /** where the reset was asked for */
  @Property({ type: 'string', length: 45, nullable: true })
  requestedIp?: string | null;
}
