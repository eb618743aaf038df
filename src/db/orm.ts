/** MikroORM setup: explicit entities, committed migrations, and the tenant filter. */
import 'reflect-metadata';
import { MikroORM, defineConfig, type EntityManager, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
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
  return MikroORM.init(ormConfig(opts));
}

/** Applies pending committed migrations; returns the names applied. */
export async function migrate(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
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
