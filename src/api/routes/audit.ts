/**
 * /api/v1/audit: the tamper-evident audit trail the database triggers write — every change to a
 * business row, who made it (user, token, CLI command, workflow) and which request or workflow,
 * hash-chained per tenant. A tenant's OWNER and ADMIN members and its write tokens read their
 * tenant's chain; a platform administrator reads any chain (`tenant_id`, or `platform`).
 */
import { once } from 'node:events';
import type { Response } from 'express';
import type { MikroORM } from '../../db/orm';
import { PLATFORM_CHAIN } from '../../domain/audit';
import { AppError } from '../../domain/errors';
import type { Principal } from '../../domain/principal';
import { auditEventPage, auditEventStream, type AuditFilter } from '../../services/audit';
import { route, type Route } from '../http/route';
import { encodeCursor } from './common.schemas';
import { AuditEventList, ExportAuditEventsQuery, ListAuditEventsQuery } from './audit.schemas';

type Filters = {
  tenant_id?: string | undefined;
  entity_type?: string | undefined;
  entity_id?: string | undefined;
  actor_id?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
};

/** The caller's chain: a tenant's own (naming another is refused), or the one a platform administrator names. */
function filterFor(principal: Principal, query: Filters): AuditFilter {
  if (principal.tenantId && query.tenant_id !== undefined && query.tenant_id !== principal.tenantId) {
    throw new AppError('forbidden', 'only platform administrators read other tenants’ audit trails', {
      errors: [{ field: 'tenant_id', message: 'must be your own tenant or left out' }],
    });
  }
  return {
    chain: principal.tenantId ?? query.tenant_id ?? PLATFORM_CHAIN,
    entityType: query.entity_type,
    entityId: query.entity_id,
    actorId: query.actor_id,
    since: query.since === undefined ? undefined : new Date(query.since),
    until: query.until === undefined ? undefined : new Date(query.until),
  };
}

/** Writes a chunk, waiting while the client's socket is full; false once the client has gone. */
async function send(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  return !res.destroyed;
}

const FILTERS_DESCRIPTION =
  'Filter by `entity_type` (the table, e.g. `cloud_pods`), `entity_id`, `actor_id` and time (`since` inclusive, ' +
  '`until` exclusive). A tenant’s OWNER or ADMIN, or one of its write tokens, reads the tenant’s chain (naming ' +
  'another tenant is 403); a platform administrator reads the chain of `tenant_id`, or the platform’s ' +
  '(changes to users, nodes and platform tokens) when it is left out or `platform`.';

export function auditRoutes(deps: { orm: MikroORM }): Route[] {
  return [
    route({
      operationId: 'listAuditEvents',
      tag: 'Audit',
      method: 'get',
      path: '/api/v1/audit/events',
      summary: 'List audit events of one chain, oldest first',
      description: FILTERS_DESCRIPTION,
      access: { caller: 'any', permission: 'audit:read' },
      query: ListAuditEventsQuery,
      responses: {
        200: {
          description: 'A page of audit events',
          content: { 'application/json': { schema: AuditEventList } },
        },
      },
      async handle({ principal, query, res }) {
        const page = await auditEventPage(deps.orm.em, filterFor(principal, query), {
          afterSeq: query.cursor,
          limit: query.limit,
        });
        res.json({
          data: page.events,
          next_cursor: page.nextSeq === null ? null : encodeCursor(String(page.nextSeq)),
        });
      },
    }),
    route({
      operationId: 'exportAuditEvents',
      tag: 'Audit',
      method: 'get',
      path: '/api/v1/audit/export',
      summary: 'Export audit events of one chain as NDJSON, oldest first',
      description: `One JSON event per line (the fields of \`GET /audit/events\`), streamed page by page however long the chain. ${FILTERS_DESCRIPTION}`,
      access: { caller: 'any', permission: 'audit:read' },
      query: ExportAuditEventsQuery,
      responses: {
        200: {
          description: 'Every matching event, one JSON object per line',
          content: { 'application/x-ndjson': { schema: { type: 'string' } } },
        },
      },
      async handle({ principal, query, res }) {
        const filter = filterFor(principal, query);
        const pages = auditEventStream(deps.orm.em, filter);
        // The first page is read before anything is sent, so a database failure is still a problem answer.
        let next = await pages.next();
        res.status(200).type('application/x-ndjson');
        res.setHeader('Content-Disposition', `attachment; filename="audit-${filter.chain}.ndjson"`);
        try {
          while (!next.done) {
            if (!(await send(res, next.value.map((e) => JSON.stringify(e)).join('\n') + '\n'))) {
              await pages.return(undefined);
              return;
            }
            next = await pages.next();
          }
          res.end();
        } catch (err) {
          // Half an export must not pass for a whole one: the connection ends without its last chunk.
          res.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      },
    }),
  ];
}
