/**
 * Reading the audit trail the database triggers write (Migration20261124005000): one chain's
 * events a page at a time, an export streamed page by page, and the verification of every chain
 * by the hash chain recomputed here (src/domain/audit.ts), never by the database's own function.
 * Plain SQL throughout: the rows are never entities, and a page is a keyset on (chain, seq).
 */
import { ChainVerifier, type ChainBreak, type ChainedEvent } from '../domain/audit';
import type { EntityManager } from '../db/orm';

export interface AuditEventView {
  chain: string;
  seq: number;
  occurred_at: string;
  actor_type: string;
  actor_id: string | null;
  request_id: string | null;
  workflow_id: string | null;
  operation: string | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  prev_hash: string;
  hash: string;
}

export interface AuditFilter {
  /** a tenant id, or `platform` */
  chain: string;
  entityType?: string | undefined;
  entityId?: string | undefined;
  actorId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

type RawView = Omit<AuditEventView, 'seq'> & { seq: string | number };

const VIEW_COLUMNS = `chain, seq, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
  actor_type, actor_id, request_id, workflow_id, operation, action, entity_type, entity_id, before, after,
  prev_hash, hash`;

/** One chain's events after `afterSeq`, oldest first, matching the filter; `limit` at most. */
export async function auditEventPage(
  em: EntityManager,
  filter: AuditFilter,
  page: { afterSeq?: number | undefined; limit: number },
): Promise<{ events: AuditEventView[]; nextSeq: number | null }> {
  const where = ['chain = ?', 'seq > ?'];
  const params: unknown[] = [filter.chain, page.afterSeq ?? 0];
  const and = (condition: string, value: unknown) => {
    if (value === undefined) return;
    where.push(condition);
    params.push(value);
  };
  and('entity_type = ?', filter.entityType);
  and('entity_id = ?', filter.entityId);
  and('actor_id = ?', filter.actorId);
  and('occurred_at >= ?', filter.since);
  and('occurred_at < ?', filter.until);
  const rows = await em
    .getConnection()
    .execute<RawView[]>(
      `select ${VIEW_COLUMNS} from audit_events where ${where.join(' and ')} order by seq limit ?`,
      [...params, page.limit + 1],
    );
  const events = rows.slice(0, page.limit).map((r) => ({ ...r, seq: Number(r.seq) }));
  return { events, nextSeq: rows.length > page.limit ? (events.at(-1)?.seq ?? null) : null };
}

/** Every matching event of the chain, a page at a time: memory stays one page whatever the chain's length. */
export async function* auditEventStream(
  em: EntityManager,
  filter: AuditFilter,
  pageSize = 500,
): AsyncGenerator<AuditEventView[]> {
  let afterSeq = 0;
  for (;;) {
    const { events, nextSeq } = await auditEventPage(em, filter, { afterSeq, limit: pageSize });
    if (events.length > 0) yield events;
    if (nextSeq === null) return;
    afterSeq = nextSeq;
  }
}

export interface AuditVerification {
  chains: number;
  events: number;
  /** the first break of each broken chain */
  breaks: ChainBreak[];
}

interface RawChained {
  seq: string | number;
  occurred_ms: string | number;
  actor_type: string;
  actor_id: string | null;
  request_id: string | null;
  workflow_id: string | null;
  operation: string | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  before_text: string | null;
  after_text: string | null;
  prev_hash: string;
  hash: string;
}

const VERIFY_PAGE = 1000;

/**
 * Verifies every chain (or the one named), streaming each in seq order: hashes recomputed here,
 * `prev_hash` links, seqs without gaps, and the head (audit_heads) at the last event. `onProgress`
 * is called after each page (an activity heartbeats there).
 */
export async function verifyAuditChains(
  em: EntityManager,
  opts: { chain?: string | undefined; onProgress?: (events: number) => void } = {},
): Promise<AuditVerification> {
  const conn = em.getConnection();
  const heads = new Map(
    (
      await conn.execute<{ chain: string; seq: string | number; hash: string }[]>(
        `select chain, seq, hash from audit_heads ${opts.chain === undefined ? '' : 'where chain = ?'}`,
        opts.chain === undefined ? [] : [opts.chain],
      )
    ).map((h) => [h.chain, { seq: Number(h.seq), hash: h.hash }]),
  );
  // The chains the events name (a skip scan of the primary key), in case a head went missing.
  const named =
    opts.chain === undefined
      ? await conn.execute<{ chain: string }[]>(
          `with recursive c as (
             select min(chain) as chain from audit_events
             union all
             select (select min(chain) from audit_events where chain > c.chain) from c where c.chain is not null)
           select chain from c where chain is not null`,
        )
      : [{ chain: opts.chain }];
  const chains = [...new Set([...heads.keys(), ...named.map((c) => c.chain)])].sort();
  const result: AuditVerification = { chains: 0, events: 0, breaks: [] };
  for (const chain of chains) {
    const verifier = new ChainVerifier(chain);
    let afterSeq = 0;
    for (;;) {
      const rows = await conn.execute<RawChained[]>(
        `select seq, (extract(epoch from occurred_at) * 1000)::float8 as occurred_ms, actor_type, actor_id,
                request_id, workflow_id, operation, action, entity_type, entity_id,
                before::text as before_text, after::text as after_text, prev_hash, hash
           from audit_events where chain = ? and seq > ? order by seq limit ?`,
        [chain, afterSeq, VERIFY_PAGE],
      );
      let intact = true;
      for (const r of rows) {
        intact = verifier.add(chainedEvent(chain, r));
        if (!intact) break;
      }
      result.events += rows.length;
      opts.onProgress?.(result.events);
      if (!intact || rows.length < VERIFY_PAGE) break;
      afterSeq = Number(rows.at(-1)?.seq);
    }
    const broken = verifier.finish(heads.get(chain) ?? null);
    if (broken) result.breaks.push(broken);
    result.chains += 1;
  }
  return result;
}

function chainedEvent(chain: string, r: RawChained): ChainedEvent {
  return {
    chain,
    seq: Number(r.seq),
    occurredAt: new Date(Math.round(Number(r.occurred_ms))),
    actorType: r.actor_type,
    actorId: r.actor_id,
    requestId: r.request_id,
    workflowId: r.workflow_id,
    operation: r.operation,
    action: r.action,
    entityType: r.entity_type,
    entityId: r.entity_id,
    beforeText: r.before_text,
    afterText: r.after_text,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
