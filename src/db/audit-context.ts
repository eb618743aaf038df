/**
 * Who is changing rows, and why, for the audit triggers: the API (caller and request id), a
 * Temporal activity (its workflow) or the CLI (its command) run their work inside
 * `withAuditContext`, and every database transaction started inside it begins by handing that
 * context to PostgreSQL as transaction-local settings (`podplane.actor_type`, …), which the audit
 * trigger reads. One statement per transaction; none outside a context (the trigger then records
 * the actor as `system`).
 *
 * A write run outside any transaction (`em.nativeUpdate`, a bare `em.execute`) is its own
 * transaction: `carryAuditContextToAutocommitWrites` gives its connection the context as session
 * settings for that one statement (two more round trips, only for such writes inside a context).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import { Context as ActivityContext } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface AuditContext {
  /** `user`, `api_token`, `system`, `cli`, `workflow` */
  actorType: string;
  actorId: string | null;
  requestId?: string | null;
  workflowId?: string | null;
  /** the route's operationId, the CLI command, the activity */
  operation?: string | null;
}

const storage = new AsyncLocalStorage<() => AuditContext>();

/**
 * Runs `run` with `context` as the audit context of every transaction it starts. A function is read
 * when each transaction starts (the API's caller is known only once authenticated).
 */
export function withAuditContext<T>(context: AuditContext | (() => AuditContext), run: () => T): T {
  return storage.run(typeof context === 'function' ? context : () => context, run);
}

export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore()?.();
}

/** Settings values are text; the trigger caps nothing, so neither may a caller's header. */
const setting = (value: string | null | undefined) => (value ?? '').slice(0, 200);

const SET_CONTEXT = `select set_config('podplane.actor_type', ?, true), set_config('podplane.actor_id', ?, true),
  set_config('podplane.request_id', ?, true), set_config('podplane.workflow_id', ?, true),
  set_config('podplane.operation', ?, true)`;

function contextValues(context: AuditContext): string[] {
  return [
    setting(context.actorType),
    setting(context.actorId),
    setting(context.requestId),
    setting(context.workflowId),
    setting(context.operation),
  ];
}

const SET_SESSION_CONTEXT = `select set_config('podplane.actor_type', $1, false), set_config('podplane.actor_id', $2, false),
  set_config('podplane.request_id', $3, false), set_config('podplane.workflow_id', $4, false),
  set_config('podplane.operation', $5, false)`;
const CLEAR_SESSION_CONTEXT = SET_SESSION_CONTEXT.replace(/\$\d/g, "''");

/** What knex's PostgreSQL client is made of, as far as the hook below uses it. */
export interface PgConnection {
  query(text: string, values?: unknown[]): Promise<unknown>;
  /** set by knex while the connection runs a transaction */
  __knexTxId?: unknown;
}
interface KnexPgClient {
  _query(connection: PgConnection, obj: { sql?: string }): Promise<unknown>;
}

const WRITE = /^\s*(insert|update|delete|merge|with)\b/i;

/**
 * Autocommit writes carry the audit context too: knex's PostgreSQL client runs every statement
 * through `_query`; a write outside a transaction, inside a context, is preceded by the context as
 * session settings and followed by their reset (so the pooled connection carries nothing to its
 * next user). Checked at start-up: a knex without `_query` fails loudly here, not silently later.
 */
export function carryAuditContextToAutocommitWrites(knexClient: unknown): void {
  const client = knexClient as KnexPgClient;
  if (typeof client._query !== 'function') {
    throw new Error('knex no longer runs statements through client._query; update src/db/audit-context.ts');
  }
  const original = client._query.bind(client);
  client._query = (connection, obj) =>
    connection.__knexTxId === undefined
      ? autocommitWrite(connection, obj.sql ?? '', () => original(connection, obj))
      : original(connection, obj);
}

/**
 * Runs `statement` (autocommit, on `connection`) with the current audit context as session settings
 * when it is a write inside a context; as it is otherwise.
 */
export async function autocommitWrite<T>(
  connection: PgConnection,
  sql: string,
  statement: () => Promise<T>,
): Promise<T> {
  const context = currentAuditContext();
  if (!context || !WRITE.test(sql)) return statement();
  await connection.query(SET_SESSION_CONTEXT, contextValues(context));
  try {
    return await statement();
  } finally {
    await connection.query(CLEAR_SESSION_CONTEXT);
  }
}

/** Hands the current audit context to each root transaction as it starts. */
export class AuditContextSubscriber implements EventSubscriber {
  async afterTransactionStart({ em, transaction }: TransactionEventArgs): Promise<void> {
    const context = currentAuditContext();
    if (!context || !transaction) return;
    await em.getConnection().execute(SET_CONTEXT, contextValues(context), 'run', transaction);
  }
}

/**
 * Every activity runs in the audit context of its workflow: actor `workflow` (the workflow type),
 * the workflow id, the activity as the operation.
 */
export const auditActivityInterceptor: ActivityInterceptorsFactory = () => ({
  inbound: {
    execute: (input, next) => {
      const info = ActivityContext.current().info;
      return withAuditContext(
        {
          actorType: 'workflow',
          actorId: info.workflowType ?? null,
          workflowId: info.workflowExecution?.workflowId ?? null,
          operation: info.activityType,
        },
        () => next(input),
      );
    },
  },
});
