/**
 * Idempotency-Key (IETF draft semantics), scoped to tenant and principal: the same key with the
 * same payload returns the stored response; with another payload 422; while the first request is
 * still running 409. The claim is a unique insert, so two simultaneous requests cannot both run.
 *
 * A claim holds a short lease (`locked_until`): a request whose process died after claiming never
 * finishes, so once the lease lapses a retry with the same payload takes the key over (one
 * conditional UPDATE, so only one retry wins) instead of answering 409 until the key expires.
 * The lease value doubles as a fencing token: a request whose key was taken over cannot
 * overwrite or release the new holder's claim.
 *
 * Only definitive answers are kept (24 h): a transient one (409, 429, any 5xx) releases the key,
 * so the client's retry with the same key runs again once the cause is gone.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { MikroORM } from '../../db/orm';
import { systemEm } from '../../db/orm';
import { AppError, conflict } from '../../domain/errors';
import { newId } from '../../domain/ids';
import { principalOf } from './auth';

const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;
/** how long a stored answer is replayed */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/**
 * How long a claim is held before a retry may take the key over. Longer than any request this API
 * serves (long work answers 202), short enough that a crashed request blocks its key only briefly.
 */
export const IDEMPOTENCY_LEASE_MS = 60_000;
const KEPT_HEADERS = ['content-type', 'location'];
/** answers that depend on the moment, not on the request: replaying them would be wrong */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([409, 429]);

/** Whether an answer is stored and replayed for its key; otherwise the key is released. */
export function keepsAnswer(status: number): boolean {
  return status < 500 && !TRANSIENT_STATUSES.has(status);
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** JSON with sorted keys, so `{a,b}` and `{b,a}` are the same payload. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

interface StoredKey {
  id: string;
  fingerprint: string;
  state: 'IN_PROGRESS' | 'COMPLETED';
  response_status: number | null;
  response_body: unknown;
  response_headers: Record<string, string> | null;
  expired: boolean;
  /** whole seconds until the lease lapses (≤ 0: lapsed) */
  lease_left_s: number;
}

/** A held claim: the row and the lease it was claimed with (the raw driver string, compared exactly). */
interface Claim {
  id: string;
  lock: string;
}

export function idempotency(orm: MikroORM, opts: { leaseMs?: number } = {}): RequestHandler {
  const leaseMs = opts.leaseMs ?? IDEMPOTENCY_LEASE_MS;
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (key === undefined) return next();
    if (!KEY_SHAPE.test(key)) {
      throw new AppError(
        'validation_failed',
        'the Idempotency-Key header must be 1–255 printable ASCII characters',
        {
          errors: [{ field: 'Idempotency-Key', message: 'invalid' }],
        },
      );
    }
    const principal = principalOf(req);
    const scope = principal.tenantId ?? 'platform';
    const path = `${req.baseUrl}${req.path}`;
    const where = [scope, principal.sessionId ?? principal.actorId, req.method, path, sha256(key)];
    const fingerprint = sha256(canonicalJson(req.body));
    const conn = systemEm(orm).getConnection();
    // Lease times are the database's clock, so API processes with skewed clocks agree on them.
    const claim = async (): Promise<Claim | undefined> =>
      (
        await conn.execute<Claim[]>(
          `insert into idempotency_keys (id, scope, principal_id, method, path, key_hash, fingerprint, state, expires_at, locked_until, created_at)
           values (?, ?, ?, ?, ?, ?, ?, 'IN_PROGRESS', now() + ? * interval '1 millisecond', now() + ? * interval '1 millisecond', now())
           on conflict (scope, principal_id, method, path, key_hash) do nothing returning id, locked_until as lock`,
          [newId('idempotency'), ...where, fingerprint, IDEMPOTENCY_TTL_MS, leaseMs],
        )
      )[0];

    let claimed = await claim();
    if (!claimed) {
      const [existing] = await conn.execute<StoredKey[]>(
        `select id, fingerprint, state, response_status, response_body, response_headers, expires_at <= now() as expired,
                ceil(extract(epoch from coalesce(locked_until, created_at + ? * interval '1 millisecond') - now()))::int as lease_left_s
           from idempotency_keys where scope = ? and principal_id = ? and method = ? and path = ? and key_hash = ?`,
        [leaseMs, ...where],
      );
      if (!existing) {
        // Released between our insert and this read (its request answered something transient).
        claimed = await claim();
      } else if (existing.expired) {
        await conn.execute('delete from idempotency_keys where id = ? and expires_at <= now()', [
          existing.id,
        ]);
        claimed = await claim();
      } else if (existing.fingerprint !== fingerprint) {
        throw new AppError('unprocessable', 'this Idempotency-Key was already used with a different request');
      } else if (existing.state === 'COMPLETED' && existing.response_status !== null) {
        for (const [h, v] of Object.entries(existing.response_headers ?? {})) res.setHeader(h, v);
        res.setHeader('Idempotent-Replayed', 'true');
        res.status(existing.response_status).send(JSON.stringify(existing.response_body));
        return;
      } else if (existing.state === 'IN_PROGRESS' && existing.lease_left_s <= 0) {
        // The holder's lease lapsed: it crashed (or hung). Only one retry wins this UPDATE.
        [claimed] = await conn.execute<Claim[]>(
          `update idempotency_keys set locked_until = now() + ? * interval '1 millisecond'
            where id = ? and state = 'IN_PROGRESS' and fingerprint = ?
              and coalesce(locked_until, created_at + ? * interval '1 millisecond') < now()
            returning id, locked_until as lock`,
          [leaseMs, existing.id, fingerprint, leaseMs],
        );
        if (claimed)
          req.log.warn({ idempotencyKeyId: existing.id }, 'took over an Idempotency-Key whose lease lapsed');
      }
      if (!claimed) {
        const wait = Math.min(Math.max(existing?.lease_left_s ?? 1, 1), Math.ceil(leaseMs / 1000));
        res.setHeader('Retry-After', String(wait));
        throw conflict('a request with this Idempotency-Key is still being processed');
      }
    }

    const held: Claim = claimed;
    let settled = false;
    // Both writes are fenced on the lease we hold: after a takeover they change nothing.
    const release = () =>
      conn.execute(
        `delete from idempotency_keys where id = ? and state = 'IN_PROGRESS' and locked_until = ?`,
        [held.id, held.lock],
      );
    const send = res.json.bind(res) as Response['json'];
    // Store the outcome before the client sees it, so a retry right after never finds IN_PROGRESS.
    res.json = ((body: unknown) => {
      settled = true;
      const status = res.statusCode;
      // res.json sets the JSON content type itself unless a route chose one (problem+json).
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      for (const h of KEPT_HEADERS) {
        const v = res.getHeader(h);
        if (v !== undefined) headers[h] = String(v);
      }
      const store = keepsAnswer(status)
        ? conn.execute(
            `update idempotency_keys set state = 'COMPLETED', response_status = ?, response_body = ?, response_headers = ?, locked_until = null
              where id = ? and state = 'IN_PROGRESS' and locked_until = ?`,
            [status, JSON.stringify(body ?? null), JSON.stringify(headers), held.id, held.lock],
          )
        : release();
      store.then(
        () => send(body),
        (err: unknown) => {
          req.log.error({ err }, 'could not store the idempotent response');
          send(body);
        },
      );
      return res;
    }) as Response['json'];
    // An answer that did not go through res.json (an empty 204, say) is not replayable: free the key.
    res.on('finish', () => {
      if (settled) return;
      settled = true;
      release().catch((err: unknown) => req.log.error({ err }, 'could not release the Idempotency-Key'));
    });
    next();
  };
}
