/**
 * Per-request IP enforcement for a tenant's principals (users and API tokens alike), after
 * authentication on every non-public route: first the tenant security policy's IP allowlist
 * (403 `ip-not-allowed`), then the tenant's shield rules (domain/shield.ts) — in ENFORCE a refused
 * address is 403 `ip-blocked`, in MONITOR the request goes on and the refusal is only recorded.
 * Neither answer says which rule or list refused.
 *
 * The hot path costs a map lookup: each tenant's compiled policy (node:net BlockLists) is kept for
 * SHIELD_CACHE_MS, and a tenant with neither rules nor an allowlist is let through at once. A change
 * made in this process is seen at once (`forgetShieldPolicy`); one made elsewhere (another API
 * process, the database directly) within 2 × SHIELD_CACHE_MS = 4 s.
 *
 * Recording is aggregated, never on the answer's path: refusals become one `shield_events` row per
 * tenant, address, source, action and minute whose `hits` count them; the refused request does not
 * wait for it. Per process at most one write per such row is in flight; refusals arriving meanwhile
 * are summed into the next write. A SHIELD_BLOCKED or IP_NOT_ALLOWED security event (MEDIUM) is
 * written with the row's first insert, so once per tenant, address and minute, not per request.
 * Memory is bounded by SHIELD_WINDOWS_MAX rows being counted at once; past it (a flood from that
 * many addresses within one minute) further refusals are answered but not counted, and that is
 * logged once a minute.
 */
import type { BlockList } from 'node:net';
import type { Request, RequestHandler } from 'express';
import {
  ShieldRule,
  TenantSecurityPolicy,
  type ShieldEventAction,
  type ShieldEventSource,
} from '../../db/entities';
import { hotQuery } from '../../db/hot';
import { systemEm, type MikroORM } from '../../db/orm';
import { AppError } from '../../domain/errors';
import { newId } from '../../domain/ids';
import type { Principal } from '../../domain/principal';
import {
  allowlistAdmits,
  compileAllowlist,
  compileShield,
  evaluateShield,
  parseIp,
  type CompiledShield,
  type IpAddress,
  type ShieldMode,
  type ShieldRuleInput,
} from '../../domain/shield';
import type { Logger } from '../../logger';
import { recordSecurityEvent } from '../../services/security-events';

/**
 * How long a tenant's compiled policy is used before it is read again; for as long again it is
 * still used while a read refreshes it. A change made in another process applies here within
 * twice this (plus one read).
 */
export const SHIELD_CACHE_MS = 2000;
const SHIELD_CACHE_MAX = 10_000;
/** How many (tenant, address, source, action, minute) rows one process counts at once. */
export const SHIELD_WINDOWS_MAX = 10_000;
const MINUTE_MS = 60_000;

/** What one tenant's requests are checked against. */
interface TenantGuard {
  mode: ShieldMode;
  /** null: no rules, or the shield is OFF */
  shield: CompiledShield | null;
  /** null: no allowlist (every address) */
  allowlist: BlockList | null;
}

interface CacheEntry {
  guard?: TenantGuard;
  until: number;
  loading?: Promise<TenantGuard>;
}
interface GuardCache {
  entries: Map<string, CacheEntry>;
  /** moved by every `forgetShieldPolicy`: a read begun before it is not kept */
  generation: number;
}

/** One cache per mounted app; `forgetShieldPolicy` reaches them all. */
const caches = new Set<GuardCache>();

/** A tenant's shield or security policy changed in this process: read it afresh on its next request. */
export function forgetShieldPolicy(tenantId?: string): void {
  for (const cache of caches) {
    cache.generation += 1;
    if (tenantId === undefined) cache.entries.clear();
    else cache.entries.delete(tenantId);
  }
}

/** The tenant's shield rules (with their policy's mode) and allowlist, compiled. */
async function loadGuard(orm: MikroORM, tenantId: string): Promise<TenantGuard> {
  const em = systemEm(orm);
  const [rules, policy] = await Promise.all([
    em.fork().find(ShieldRule, { tenant: tenantId }, { populate: ['policy'], orderBy: { position: 'asc' } }),
    em.fork().findOne(TenantSecurityPolicy, { tenant: tenantId }, { fields: ['ipAllowlist'] }),
  ]);
  const mode = rules[0]?.policy.mode ?? 'OFF';
  const inputs: ShieldRuleInput[] = rules.map((r) => ({ id: r.id, action: r.action, cidr: r.cidr }));
  return {
    mode,
    shield: mode === 'OFF' || inputs.length === 0 ? null : compileShield(inputs),
    allowlist: compileAllowlist(policy?.ipAllowlist ?? []),
  };
}

export interface RefusalRecord {
  tenantId: string;
  ip: string;
  source: ShieldEventSource;
  mode: ShieldMode;
  action: ShieldEventAction;
  rule: ShieldRuleInput | null;
  method: string;
  path: string;
  principal: Principal;
  requestId: string;
  userAgent: string | null;
  /** the refused request's logger, for a write that fails */
  log: Logger;
}

interface Window {
  /** refusals not written yet */
  pending: number;
  writing: boolean;
  minute: number;
}

/** Aggregates refusals per (tenant, address, source, action, minute) into `shield_events`. */
export class RefusalRecorder {
  private readonly windows = new Map<string, Window>();
  private minute = 0;
  private droppedSince = 0;

  constructor(private readonly orm: MikroORM) {}

  /** Counts one refusal; the write happens in the background. */
  note(refusal: RefusalRecord, now = Date.now()): void {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    if (minute !== this.minute) this.turn(minute);
    const key = `${refusal.tenantId} ${refusal.ip} ${refusal.source} ${refusal.action} ${minute}`;
    let window = this.windows.get(key);
    if (!window) {
      if (this.windows.size >= SHIELD_WINDOWS_MAX) {
        if (this.droppedSince === 0) {
          refusal.log.warn(
            { windows: this.windows.size },
            'shield: too many addresses refused this minute to count them all',
          );
        }
        this.droppedSince += 1;
        return;
      }
      window = { pending: 0, writing: false, minute };
      this.windows.set(key, window);
    }
    window.pending += 1;
    if (!window.writing) void this.flush(window, refusal);
  }

  /** A new minute: windows of past minutes with nothing left to write are forgotten. */
  private turn(minute: number): void {
    this.minute = minute;
    this.droppedSince = 0;
    for (const [key, w] of this.windows)
      if (w.minute < minute && !w.writing && w.pending === 0) this.windows.delete(key);
  }

  private async flush(window: Window, refusal: RefusalRecord): Promise<void> {
    window.writing = true;
    try {
      while (window.pending > 0) {
        const hits = window.pending;
        window.pending = 0;
        try {
          await this.write(refusal, hits, window.minute, new Date());
        } catch (err) {
          refusal.log.error({ err, tenantId: refusal.tenantId }, 'shield: could not record a refusal');
        }
      }
    } finally {
      window.writing = false;
    }
  }

  private async write(r: RefusalRecord, hits: number, minute: number, at: Date): Promise<void> {
    const [row] = await hotQuery<{ inserted: boolean }>(
      this.orm.em,
      'shield_event_upsert',
      `insert into shield_events (id, tenant_id, ip, source, mode, action, rule_id, rule_action, rule_cidr,
                                  method, path, actor_id, request_id, window_start, hits, last_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       on conflict (tenant_id, ip, source, action, window_start) do update
         set hits = shield_events.hits + excluded.hits,
             last_at = greatest(shield_events.last_at, excluded.last_at),
             updated_at = now()
       returning (xmax = 0) as inserted`,
      [
        newId('shieldEvent'),
        r.tenantId,
        r.ip,
        r.source,
        r.mode,
        r.action,
        r.rule?.id ?? null,
        r.rule?.action ?? null,
        r.rule?.cidr ?? null,
        r.method.slice(0, 10),
        r.path.slice(0, 200),
        r.principal.actorId.slice(0, 40),
        r.requestId.slice(0, 100),
        new Date(minute),
        hits,
        at,
      ],
    );
    // The first refusal of the minute (in any process) is also a security event; a MONITOR one is not.
    if (row?.inserted && r.action === 'BLOCKED') {
      await recordSecurityEvent(systemEm(this.orm), {
        kind: r.source === 'SHIELD' ? 'SHIELD_BLOCKED' : 'IP_NOT_ALLOWED',
        severity: 'MEDIUM',
        tenantId: r.tenantId,
        userId: r.principal.actorType === 'user' ? r.principal.actorId : null,
        ip: r.ip,
        userAgent: r.userAgent,
        details: {
          method: r.method,
          path: r.path.slice(0, 200),
          token_id: r.principal.tokenId,
          rule_id: r.rule?.id ?? null,
          rule_cidr: r.rule?.cidr ?? null,
          request_id: r.requestId,
          aggregated_per: 'minute',
        },
      });
    }
  }
}

/** The address refusals are recorded under: canonical when it is one, else as sent (cut short). */
const recordedIp = (ip: IpAddress | null, raw: string | undefined) =>
  ip?.address ?? (raw ?? 'unknown').slice(0, 45);

/**
 * The middleware: a tenant's principal from an address its allowlist or (in ENFORCE) its shield
 * refuses gets a 403; every other request passes untouched. Platform principals are not checked.
 */
export function shield(orm: MikroORM): RequestHandler {
  const cache: GuardCache = { entries: new Map(), generation: 0 };
  caches.add(cache);
  const recorder = new RefusalRecorder(orm);

  /** Reads the tenant's guard once however many requests ask meanwhile, and keeps it unless forgotten since. */
  const load = (tenantId: string, previous: CacheEntry | undefined): Promise<TenantGuard> => {
    const generation = cache.generation;
    const loading = loadGuard(orm, tenantId).then(
      (guard) => {
        if (cache.generation === generation) {
          if (cache.entries.size >= SHIELD_CACHE_MAX && !cache.entries.has(tenantId)) {
            cache.entries.delete(cache.entries.keys().next().value as string);
          }
          cache.entries.set(tenantId, { guard, until: Date.now() + SHIELD_CACHE_MS });
        }
        return guard;
      },
      (err: unknown) => {
        const entry = cache.entries.get(tenantId);
        if (entry?.loading === loading) delete entry.loading;
        // the database failed: the last known guard holds meanwhile; without one, the request fails
        if (previous?.guard) return previous.guard;
        throw err;
      },
    );
    cache.entries.set(tenantId, {
      ...(previous?.guard ? { guard: previous.guard } : {}),
      until: previous?.until ?? 0,
      loading,
    });
    return loading;
  };

  /**
   * The tenant's guard: fresh from the cache; past SHIELD_CACHE_MS the one cached while a read
   * refreshes it (requests never queue behind the refresh); never read yet (or forgotten) once read.
   */
  const guardOf = (tenantId: string): TenantGuard | Promise<TenantGuard> => {
    const entry = cache.entries.get(tenantId);
    const now = Date.now();
    if (entry?.guard && entry.until > now) return entry.guard;
    // a guard that expired within the last SHIELD_CACHE_MS may still answer while it is refreshed
    const recent = entry?.guard && entry.until + SHIELD_CACHE_MS > now ? entry.guard : undefined;
    if (entry?.loading) return recent ?? entry.loading;
    const loading = load(tenantId, entry);
    if (recent) {
      // a failed refresh already falls back to the guard it had; nothing waits on this promise
      loading.catch(() => undefined);
      return recent;
    }
    return loading;
  };

  const check = (req: Request, principal: Principal & { tenantId: string }, guard: TenantGuard): void => {
    if (!guard.allowlist && !guard.shield) return;
    const ip = parseIp(req.ip ?? '');
    const record = (
      source: ShieldEventSource,
      action: ShieldEventAction,
      mode: ShieldMode,
      rule: ShieldRuleInput | null,
    ) => {
      recorder.note({
        tenantId: principal.tenantId,
        ip: recordedIp(ip, req.ip),
        source,
        mode,
        action,
        rule,
        method: req.method,
        path: req.originalUrl.split('?')[0] ?? req.path,
        principal,
        requestId: req.id,
        userAgent: req.get('user-agent') ?? null,
        log: req.log,
      });
    };
    if (!allowlistAdmits(guard.allowlist, ip)) {
      record('ALLOWLIST', 'BLOCKED', 'ENFORCE', null);
      throw new AppError('ip_not_allowed', 'this tenant does not accept requests from your address');
    }
    if (!guard.shield) return;
    const verdict = evaluateShield(guard.shield, ip);
    if (verdict.allowed) return;
    if (guard.mode === 'ENFORCE') {
      record('SHIELD', 'BLOCKED', 'ENFORCE', verdict.rule);
      throw new AppError('ip_blocked', 'requests from your address are blocked for this tenant');
    }
    record('SHIELD', 'WOULD_BLOCK', guard.mode, verdict.rule);
  };

  return (req, _res, next) => {
    const principal = req.principal;
    const tenantId = principal?.tenantId;
    if (!principal || !tenantId) {
      next();
      return;
    }
    const tenantPrincipal = principal as Principal & { tenantId: string };
    const guard = guardOf(tenantId);
    if (!(guard instanceof Promise)) {
      check(req, tenantPrincipal, guard);
      next();
      return;
    }
    return guard.then((g) => {
      check(req, tenantPrincipal, g);
      next();
    });
  };
}
