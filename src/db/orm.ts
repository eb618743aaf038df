/** MikroORM setup: explicit entities, committed migrations, and the tenant filter. */
import 'reflect-metadata';
import { MikroORM, defineConfig, type EntityManager, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { AuditContextSubscriber, carryAuditContextToAutocommitWrites } from './audit-context';
import { ENTITIES, TENANT_SCOPED_ENTITIES, Tenant } from './entities';
import { MIGRATIONS } from './migrations';

export const TENANT_FILTER = 'tenant';

/**
 * Soft-deleted customers, products and subscriptions (`deleted_at` set) are hidden from every ORM query unless
 * the query turns this filter off (`{ filters: { [SOFT_DELETED]: false } }`): a listing with
 * `include_deleted`, a product read by id, a change that must tell "deleted" from "missing".
 * Plain SQL does not pass through it and says `deleted_at is null` itself.
 */
export const SOFT_DELETED = 'notDeleted';

export interface OrmOptions {
  databaseUrl: string;
  poolMax?: number;
  debug?: boolean;
}

export function ormConfig(opts: OrmOptions): Options {
  return defineConfig({
    clientUrl: opts.databaseUrl,
    entities: ENTITIES,
    extensions: [Migrator],
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    forceUtcTimezone: true,
    // Every tenant-scoped row carries its own tenant_id and is filtered on it; joining each
    // referenced table just to filter it again made a page of pods 4x slower.
    filtersOnRelations: false,
    autoJoinRefsForFilters: false,
    filters: {
      [SOFT_DELETED]: {
        cond: { deletedAt: null },
        entity: ['Customer', 'Product', 'Subscription'],
        default: true,
      },
    },
    debug: opts.debug ?? false,
    allowGlobalContext: false,
    // Each transaction tells the audit triggers who is acting (src/db/audit-context.ts).
    subscribers: [new AuditContextSubscriber()],
    // Written only by triggers and read by plain SQL (src/services/audit.ts): no entities.
    schemaGenerator: { skipTables: ['audit_events', 'audit_heads'] },
    pool: { min: 0, max: opts.poolMax ?? 10 },
    migrations: {
      migrationsList: MIGRATIONS,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      // Diff against the real database, not a snapshot file, so `checkMigrationNeeded` is honest.
      snapshot: false,
      emit: 'ts',
      silent: true,
      disableForeignKeys: false,
    },
  });
}

export async function initOrm(opts: OrmOptions): Promise<MikroORM> {
  const orm = await MikroORM.init(ormConfig(opts));
  carryAuditContextToAutocommitWrites(orm.em.getConnection().getKnex().client);
  return orm;
}

/** Applies pending committed migrations; returns the names applied. */
export async function migrate(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}

/**
 * Migrates through a connection of its own, as the schema's owner (DATABASE_OWNER_URL): the
 * application's own pool connects as a role that owns nothing and could not.
 */
export async function migrateAsOwner(ownerUrl: string): Promise<string[]> {
  const orm = await initOrm({ databaseUrl: ownerUrl, poolMax: 1 });
  try {
    return await migrate(orm);
  } finally {
    await orm.close();
  }
}

/**
 * Why the role `orm` connects as defeats the database-enforced guarantees (a superuser, or the
 * owner of the audit trail, may alter it), or undefined when it does not.
 */
export async function ownerConnectionWarning(orm: MikroORM): Promise<string | undefined> {
  const [row] = await orm.em.getConnection().execute<{ role: string; superuser: boolean; owner: boolean }[]>(
    `select current_user as role, r.rolsuper as superuser,
            exists (select 1 from pg_tables t where t.schemaname = 'public' and t.tablename = 'audit_events'
                       and pg_has_role(current_user, t.tableowner, 'USAGE')) as owner
       from pg_roles r where r.rolname = current_user`,
  );
  if (!row || (!row.superuser && !row.owner)) return undefined;
  return (
    `DATABASE_URL connects as ${row.role}, ${row.superuser ? 'a superuser' : 'the owner of the schema'}: ` +
    'the audit trail is append-only only for a role that owns nothing — connect as a member of podplane_app ' +
    'and run migrations with DATABASE_OWNER_URL'
  );
}

/**
 * A fork that can only see one tenant's rows: tenant-scoped entities are filtered on
 * `tenant_id`, and `Tenant` itself on its id. Routes serving a tenant principal use only this.
 */
export function tenantEm(orm: MikroORM, tenantId: string): EntityManager {
  const em = orm.em.fork();
  em.addFilter(
    TENANT_FILTER,
    (_args: unknown, _type: unknown, _em: unknown, _opts: unknown, entityName?: string) =>
      entityName === Tenant.name ? { id: tenantId } : { tenant: tenantId },
    [Tenant, ...TENANT_SCOPED_ENTITIES],
    { default: true, args: false },
  );
  return em;
}

/** An unfiltered fork for platform admins, activities and the CLI. */
export function systemEm(orm: MikroORM): EntityManager {
  return orm.em.fork();
}

export type { MikroORM, EntityManager };
