/**
 * List pages as JSON text: rows come back unparsed (PostgreSQL's text, through a prepared
 * statement) and each is written straight into the page by the caller's `item`, with no entity
 * or object in between. Every list of the API takes this path; a test per list holds its items
 * equal to the view of the same row read by id (pods, customers, products) or through the ORM
 * (test/integration/list-pages.test.ts: tokens, tenants, nodes, a pod's jobs and backups).
 */
import { hotQuery } from '../hot';
import type { EntityManager } from '../orm';

/** A `timestamp` (UTC, as PostgreSQL writes it as text) the way `Date.toISOString()` writes it, as JSON. */
export function isoJson(pg: string | null): string {
  if (pg === null) return 'null';
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))?$/.exec(pg);
  if (!m) return JSON.stringify(new Date(`${pg}Z`).toISOString());
  return `"${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z"`;
}

/** A text column as JSON. */
export const textJson = (v: string | null) => (v === null ? 'null' : JSON.stringify(v));

/** An integer column (PostgreSQL's text of it) as JSON. */
export const intJson = (v: string | null) => (v === null ? 'null' : String(Number(v)));

/**
 * A `json`/`jsonb` column as `JSON.stringify` writes the value the ORM parses from it: `jsonb`'s text
 * has spaces after `:` and `,`, and numbers as written (`1.0`), which the view never had.
 */
export const jsonbJson = (v: string | null) => (v === null ? 'null' : JSON.stringify(JSON.parse(v)));

/** `created_at` selected as UTC text, for `isoJson`. */
export const utc = (column: string) => `${column} at time zone 'UTC' as ${column}`;

export interface Page {
  /** the JSON array of items */
  data: string;
  lastId: string | null;
  more: boolean;
}

/**
 * One page ordered by id: `select` from `table` where every condition holds, `limit` items and
 * whether more follow (one row more is read). Conditions use `$n` placeholders after `$1`
 * (`values[0]`) — the limit is appended as the last parameter. `name` must differ for every
 * distinct statement text (the conditions present), as prepared statements are named.
 * `orderBy` replaces the id order for the lists that never had a cursor (a cursor is an id: it
 * only pages what is ordered by id).
 */
export async function textPage<R extends { id: string }>(
  em: EntityManager,
  opts: {
    name: string;
    select: string;
    table: string;
    where: string[];
    values: unknown[];
    orderBy?: string;
    limit: number;
    item: (row: R) => string;
  },
): Promise<Page> {
  const values = [...opts.values, opts.limit + 1];
  const where = opts.where.length > 0 ? ` where ${opts.where.join(' and ')}` : '';
  const rows = await hotQuery<R>(
    em,
    opts.name,
    `select ${opts.select} from ${opts.table}${where} order by ${opts.orderBy ?? 'id'} limit $${values.length}`,
    values,
    { asText: true },
  );
  const page = rows.slice(0, opts.limit);
  return {
    data: `[${page.map(opts.item).join(',')}]`,
    lastId: page[page.length - 1]?.id ?? null,
    more: rows.length > opts.limit,
  };
}

/** Builds the conditions of a page query: the tenant's rows, plus each filter given. */
export class PageWhere {
  readonly where: string[] = [];
  readonly values: unknown[] = [];
  private readonly flags: string[] = [];
  private readonly scope: string;

  /**
   * The rows whose `column` holds `tenantId`: `tenant_id`, or `id` on `tenants` itself. `null` is
   * every row, for a platform principal (as `systemEm` reads for it) and the platform's lists.
   */
  constructor(tenantId: string | null, column = 'tenant_id') {
    // the scope changes the statement's text, so it is part of its name
    this.scope = tenantId === null ? 'any' : column;
    if (tenantId !== null) {
      this.where.push(`${column} = $1`);
      this.values.push(tenantId);
    }
  }

  /** `condition` with `$?` for the value's placeholder; `flag` names the variant. */
  add(flag: string, condition: string, value?: unknown): this {
    if (value === undefined && condition.includes('$?')) return this;
    if (condition.includes('$?')) {
      this.values.push(value);
      this.where.push(condition.replace('$?', `$${this.values.length}`));
    } else {
      this.where.push(condition);
    }
    this.flags.push(flag);
    return this;
  }

  /** the prepared statement's name for this variant */
  name(base: string): string {
    return `${base}_${this.scope}_${this.flags.join('') || 'all'}`;
  }
}

/** `{"data":[…],"next_cursor":…}` with the cursor of the page's last id when more follow. */
export function pageBody(page: Page, cursorOf: (lastId: string) => string): string {
  const next = page.more && page.lastId ? cursorOf(page.lastId) : null;
  return `{"data":${page.data},"next_cursor":${JSON.stringify(next)}}`;
}

/** `{"data":[…]}`: the lists that answer one capped page and no cursor. */
export function dataBody(page: Page): string {
  return `{"data":${page.data}}`;
}
