/** Each test file gets its own database, cloned from the migrated template. */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { appUrlOf } from '../../src/db/roles';
import { initOrm, type MikroORM } from '../../src/db/orm';
import { withDatabase } from './pg-url';

export interface TestDatabase {
  /** the superuser's (the schema owner's) connection */
  url: string;
  /** the application's connection: `podplane_app_login`, a member of `podplane_app`, owning nothing */
  appUrl: string;
  name: string;
  /** connected as the application, as the API and the worker are */
  orm: MikroORM;
  /** a plain pg client, as the superuser, for assertions that must bypass the ORM and its role's rights */
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through jest (global-setup prepares it)`);
  return v;
}

export async function cloneDatabase(): Promise<{ url: string; name: string }> {
  const adminUrl = env('PODPLANE_TEST_ADMIN_URL');
  const name = `podplane_w${process.env.JEST_WORKER_ID ?? '0'}_${randomBytes(4).toString('hex')}_${env('PODPLANE_TEST_RUN_ID')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}" template "${env('PODPLANE_TEST_TEMPLATE')}"`);
  } finally {
    await admin.end();
  }
  return { url: withDatabase(adminUrl, name), name };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const { url, name } = await cloneDatabase();
  const appUrl = appUrlOf(url);
  const orm = await initOrm({ databaseUrl: appUrl, poolMax: 5 });
  const client = new Client({ connectionString: url });
  await client.connect();
  return {
    url,
    appUrl,
    name,
    orm,
    query: async <T extends object>(sql: string, params: unknown[] = []) =>
      (await client.query(sql, params)).rows as T[],
    close: async () => {
      await client.end();
      await orm.close();
    },
  };
}
