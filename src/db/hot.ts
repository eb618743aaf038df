/**
 * The hottest statements (token lookup, list pages) bypass the ORM and its query builder: they
 * run as named prepared statements on a connection of the ORM's own pool, so PostgreSQL plans them
 * once per connection and the API spends no CPU on building SQL or hydrating entities.
 */
import { autocommitWrite, type PgConnection } from './audit-context';
import type { EntityManager } from './orm';

interface PgClient {
  query<R>(config: {
    name: string;
    text: string;
    values: unknown[];
    types?: { getTypeParser: () => (value: string) => unknown };
  }): Promise<{ rows: R[] }>;
}

/** Every column as PostgreSQL's text, unparsed: for callers that only copy values into JSON. */
const AS_TEXT = { getTypeParser: () => (value: string) => value };

interface KnexClient {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): Promise<void>;
}

/**
 * Runs `text` as the prepared statement `name` (one name per distinct text), outside any
 * transaction of `em` (each statement commits on its own).
 */
export async function hotQuery<R>(
  em: EntityManager,
  name: string,
  text: string,
  values: unknown[],
  opts: { asText?: boolean } = {},
): Promise<R[]> {
  const client = (em.getConnection().getKnex() as unknown as { client: KnexClient }).client;
  const connection = await client.acquireConnection();
  try {
    // a write names who makes it, for the audit trail (src/db/audit-context.ts)
    const run = async () =>
      (await connection.query<R>({ name, text, values, ...(opts.asText ? { types: AS_TEXT } : {}) })).rows;
    return await autocommitWrite(connection as unknown as PgConnection, text, run);
  } finally {
    await client.releaseConnection(connection);
  }
}
