/**
 * Idempotency-Key (IETF draft semantics), scoped to tenant and principal: the same key with the
 * same payload returns the stored response; with another payload 422; while the first request is
 * still running 409. The claim is a unique insert, so two simultaneous requests cannot both run.
 * Responses below 500 are kept 24 h; a 5xx releases the key so the client can retry.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { MikroORM } from '../../db/orm';
import { systemEm } from '../../db/orm';
import { AppError, conflict } from '../../domain/errors';
import { newId } from '../../domain/ids';
import { principalOf } from './auth';

const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;
const TTL_MS = 24 * 3600 * 1000;
const KEPT_HEADERS = ['content-type', 'location'];

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
  /** raw driver value: MikroORM's connection returns timestamps as strings */
  expires_at: string | Date;
}

export function idempotency(orm: MikroORM): RequestHandler {
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
    const scope = principal.kind === 'tenant' ? principal.tenantId : 'platform';
    const path = `${req.baseUrl}${req.path}`;
    const where = [scope, principal.tokenId, req.method, path, sha256(key)];
    const fingerprint = sha256(canonicalJson(req.body));
    const conn = systemEm(orm).getConnection();
    const claim = async () =>
      (
        await conn.execute<{ id: string }[]>(
          `insert into idempotency_keys (id, scope, principal_id, method, path, key_hash, fingerprint, state, expires_at, created_at)
           values (?, ?, ?, ?, ?, ?, ?, 'IN_PROGRESS', ?, now())
           on conflict (scope, principal_id, method, path, key_hash) do nothing returning id`,
          [newId('idempotency'), ...where, fingerprint, new Date(Date.now() + TTL_MS)],
        )
      )[0]?.id;

    let claimed = await claim();
    if (!claimed) {
      const [existing] = await conn.execute<StoredKey[]>(
        'select * from idempotency_keys where scope = ? and principal_id = ? and method = ? and path = ? and key_hash = ?',
        where,
      );
      if (existing && new Date(existing.expires_at).getTime() <= Date.now()) {
        await conn.execute('delete from idempotency_keys where id = ?', [existing.id]);
        claimed = await claim();
      } else if (existing && existing.fingerprint !== fingerprint) {
        throw new AppError('unprocessable', 'this Idempotency-Key was already used with a different request');
      } else if (existing?.state === 'COMPLETED' && existing.response_status !== null) {
        for (const [h, v] of Object.entries(existing.response_headers ?? {})) res.setHeader(h, v);
        res.setHeader('Idempotent-Replayed', 'true');
        res.status(existing.response_status).send(JSON.stringify(existing.response_body));
        return;
      }
      if (!claimed) {
        res.setHeader('Retry-After', '1');
        throw conflict('a request with this Idempotency-Key is still being processed');
      }
    }

    const keyId = claimed;
    const send = res.json.bind(res) as Response['json'];
    // Store the outcome before the client sees it, so a retry right after never finds IN_PROGRESS.
    res.json = ((body: unknown) => {
      const status = res.statusCode;
      // res.json sets the JSON content type itself unless a route chose one (problem+json).
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      for (const h of KEPT_HEADERS) {
        const v = res.getHeader(h);
        if (v !== undefined) headers[h] = String(v);
      }
      const store =
        status >= 500
          ? conn.execute('delete from idempotency_keys where id = ?', [keyId])
          : conn.execute(
              `update idempotency_keys set state = 'COMPLETED', response_status = ?, response_body = ?, response_headers = ? where id = ?`,
              [status, JSON.stringify(body ?? null), JSON.stringify(headers), keyId],
            );
      store.then(
        () => send(body),
        (err: unknown) => {
          req.log.error({ err }, 'could not store the idempotent response');
          send(body);
        },
      );
      return res;
    }) as Response['json'];
    next();
  };
}
