/** Migrations are the only way the schema is made; they apply to an empty database and match the entities. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { initOrm, migrate } from '../../src/db/orm';
import { MIGRATIONS } from '../../src/db/migrations';
import { withDatabase } from '../helpers/pg-url';

const adminUrl = () => process.env.PODPLANE_TEST_ADMIN_URL as string;

async function emptyDatabase(): Promise<string> {
  const name = `podplane_empty_${randomBytes(4).toString('hex')}_${process.env.PODPLANE_TEST_RUN_ID}`;
  const c = new Client({ connectionString: adminUrl() });
  await c.connect();
  await c.query(`create database "${name}"`);
  await c.end();
  return withDatabase(adminUrl(), name);
}

describe('migrations', () => {
  it('apply in order to an empty database, leave no diff against the entities, and are idempotent', async () => {
    const orm = await initOrm({ databaseUrl: await emptyDatabase(), poolMax: 2 });
    try {
      const applied = await migrate(orm);
      expect(applied).toEqual(MIGRATIONS.map((m) => m.name));
      const tables = await orm.em
        .getConnection()
        .execute<{ table_name: string }[]>(
          "select table_name from information_schema.tables where table_schema = 'public' order by 1",
        );
      expect(tables.map((t) => t.table_name)).toEqual(
        expect.arrayContaining([
          'tenants',
          'tenant_billing_settings',
          'tenant_quotas',
          'api_tokens',
          'notifications',
        ]),
      );
      // The generator finds nothing to do: the committed migrations produce exactly the entities' schema.
      expect(await orm.getMigrator().checkMigrationNeeded()).toBe(false);
      expect(await migrate(orm)).toEqual([]);
    } finally {
      await orm.close();
    }
  });

  it('can be rolled back to an empty schema and re-applied', async () => {
    const orm = await initOrm({ databaseUrl: await emptyDatabase(), poolMax: 2 });
    try {
      await migrate(orm);
      await orm.getMigrator().down({ to: 0 });
      const left = await orm.em
        .getConnection()
        .execute<{ n: number }[]>(
          "select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name <> 'mikro_orm_migrations'",
        );
      expect(left[0]?.n).toBe(0);
      expect(await migrate(orm)).toHaveLength(MIGRATIONS.length);
    } finally {
      await orm.close();
    }
  });

  it('lists every migration file in the index, in order', () => {
    const dir = path.join(__dirname, '../../src/db/migrations');
    const files = readdirSync(dir)
      .filter((f) => /^Migration\d+.*\.ts$/.test(f))
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(MIGRATIONS.map((m) => m.name)).toEqual(files);
  });

  it('enforce the API token owner rule in the database itself', async () => {
    const orm = await initOrm({ databaseUrl: await emptyDatabase(), poolMax: 2 });
    try {
      await migrate(orm);
      await expect(
        orm.em
          .getConnection()
          .execute(
            "insert into api_tokens (id, platform_admin, name, token_hash, prefix, scopes, created_at) values ('tok_x', false, 'orphan', repeat('a', 64), 'ppt_x', '{read}', now())",
          ),
      ).rejects.toThrow(/api_tokens_owner_check/);
    } finally {
      await orm.close();
    }
  });
});
