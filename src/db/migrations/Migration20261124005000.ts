import { Migration } from '@mikro-orm/migrations';

/**
 * The application's role and the tamper-evident audit trail.
 *
 * Roles: migrations run as the database owner; the API and the worker log in as a member of
 * `podplane_app`, which owns nothing and may only read and write rows (no DDL, no TRUNCATE). Roles
 * are cluster-wide, so the role is created only when missing (another database of the cluster, or
 * an administrator, may have made it); default privileges give it the same rights on the tables
 * later migrations create.
 *
 * Audit: AFTER ROW triggers on the business tables append each change to its tenant's hash chain
 * (`audit_events`, chain `platform` for rows without a tenant) in the same transaction. They are
 * constraint triggers deferred to the commit: each change's before and after are the row's at the
 * time of the change, but the chain is appended when the transaction commits, so the head row's
 * lock is held only for the commit itself, however long the transaction ran, and seq follows commit
 * order. One upsert of the chain's head (`audit_heads`) takes the next seq under the head row's
 * lock — one tenant's committers queue there, other tenants never wait — and computes the new
 * hash; one insert appends the event. The hash's canonical text is defined once, in `audit_hash` here, and
 * reimplemented in src/domain/audit.ts, which `podplane audit:verify` uses so that verifying never
 * trusts the database's own function. `audit_events` refuses UPDATE, DELETE and TRUNCATE by
 * triggers (the owner included) and the app role may only read it; the trigger function is
 * SECURITY DEFINER so the app role's writes can append.
 *
 * Attaching another table is one line in its migration: `select audit_attach('table_name');`
 * (optionally with columns whose changes alone are not worth an event: `audit_attach('t', array['last_seen_at'])`).
 */
export class Migration20261124005000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'podplane_app') then
    create role podplane_app nologin;
  end if;
exception
  -- a concurrent migration of another database of this cluster created it first
  when duplicate_object or unique_violation then null;
end $$;`);
    // Nobody but the owner creates objects here (PostgreSQL 15 and later already say so): the
    // SECURITY DEFINER trigger below must find only the owner's functions.
    this.addSql(`revoke create on schema public from public;`);
    this.addSql(`grant usage on schema public to podplane_app;`);
    this.addSql(`grant select, insert, update, delete on all tables in schema public to podplane_app;`);
    this.addSql(`grant usage, select on all sequences in schema public to podplane_app;`);
    this.addSql(
      `alter default privileges in schema public grant select, insert, update, delete on tables to podplane_app;`,
    );
    this.addSql(`alter default privileges in schema public grant usage, select on sequences to podplane_app;`);
    // Which migrations ran is the owner's record.
    this.addSql(`revoke insert, update, delete on mikro_orm_migrations from podplane_app;`);

    this.addSql(`create table "audit_heads" (
  "chain" text not null,
  "seq" bigint not null,
  "prev_hash" char(64) not null,
  "hash" char(64) not null,
  constraint "audit_heads_pkey" primary key ("chain"));`);
    this.addSql(`create table "audit_events" (
  "chain" text not null,
  "seq" bigint not null,
  "occurred_at" timestamptz not null,
  "actor_type" text not null,
  "actor_id" text null,
  "request_id" text null,
  "workflow_id" text null,
  "operation" text null,
  "action" text not null,
  "entity_type" text not null,
  "entity_id" text null,
  "before" jsonb null,
  "after" jsonb null,
  "prev_hash" char(64) not null,
  "hash" char(64) not null,
  constraint "audit_events_pkey" primary key ("chain", "seq"));`);
    this.addSql(
      `create index "audit_events_entity_index" on "audit_events" ("chain", "entity_type", "entity_id", "seq");`,
    );
    this.addSql(`revoke all on audit_events, audit_heads from podplane_app;`);
    this.addSql(`grant select on audit_events, audit_heads to podplane_app;`);

    // The canonical text: every field as `<UTF-8 byte length>:<text>` ('-' for null), joined by '|',
    // behind a version tag; the time in UTC with milliseconds (what a JavaScript Date keeps).
    this.addSql(`create function audit_field(v text) returns text language sql immutable parallel safe as
$$ select case when v is null then '-' else octet_length(v)::text || ':' || v end $$;`);
    this.addSql(`create function audit_hash(
  chain text, seq bigint, occurred_at timestamptz, actor_type text, actor_id text, request_id text,
  workflow_id text, operation text, action text, entity_type text, entity_id text,
  before jsonb, after jsonb, prev_hash text) returns text language sql stable parallel safe as
$$ select encode(sha256(convert_to(concat_ws('|', 'v1',
  audit_field(chain), audit_field(seq::text),
  audit_field(to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
  audit_field(actor_type), audit_field(actor_id), audit_field(request_id), audit_field(workflow_id),
  audit_field(operation), audit_field(action), audit_field(entity_type), audit_field(entity_id),
  audit_field(before::text), audit_field(after::text), audit_field(prev_hash)), 'UTF8')), 'hex') $$;`);

    // Secrets never enter the trail: a column named like one keeps its key (so a password change
    // still shows) but not its value. Timestamps (…_at) are never secret. LIKE, not a regex: this
    // runs for every key of every audited row. Null when the row holds no secret value.
    this.addSql(`create function audit_secrets(v jsonb) returns jsonb language sql immutable parallel safe as
$$ select jsonb_object_agg(k, '"[redacted]"'::jsonb) from jsonb_object_keys(v) k
    where (k like '%hash%' or k like '%secret%' or k like '%password%' or k like '%encrypted%'
           or k like '%ciphertext%' or k like '%recovery_code%')
      and k not like '%\\_at' and v->k <> 'null'::jsonb $$;`);

    this.addSql(`create function audit_record() returns trigger language plpgsql security definer
set search_path = pg_catalog, public as $$
declare
  v_new jsonb;
  v_old jsonb;
  v_before jsonb;
  v_after jsonb;
  v_chain text;
  v_entity_id text;
  v_seq bigint;
  v_prev text;
  v_hash text;
  v_at timestamptz := date_trunc('milliseconds', clock_timestamp());
  v_actor_type text := coalesce(nullif(current_setting('podplane.actor_type', true), ''), 'system');
  v_actor_id text := nullif(current_setting('podplane.actor_id', true), '');
  v_request_id text := nullif(current_setting('podplane.request_id', true), '');
  v_workflow_id text := nullif(current_setting('podplane.workflow_id', true), '');
  v_operation text := nullif(current_setting('podplane.operation', true), '');
  v_genesis constant text := repeat('0', 64);
begin
  if TG_OP = 'INSERT' then
    v_new := to_jsonb(NEW);
    v_after := v_new || coalesce(audit_secrets(v_new), '{}'::jsonb);
  elsif TG_OP = 'DELETE' then
    v_old := to_jsonb(OLD);
    v_before := v_old || coalesce(audit_secrets(v_old), '{}'::jsonb);
  else
    v_new := to_jsonb(NEW);
    v_old := to_jsonb(OLD);
    -- the changed fields only; bookkeeping columns (updated_at, version, the trigger's arguments) alone write nothing
    select jsonb_object_agg(key, v_old->key), jsonb_object_agg(key, value)
      into v_before, v_after
      from jsonb_each(v_new)
     where value is distinct from v_old->key and key <> all (array['updated_at', 'version'] || TG_ARGV);
    if v_after is null then
      return null;
    end if;
    v_before := v_before || coalesce(audit_secrets(v_before), '{}'::jsonb);
    v_after := v_after || coalesce(audit_secrets(v_after), '{}'::jsonb);
  end if;
  v_entity_id := coalesce(v_new, v_old)->>'id';
  v_chain := case when TG_TABLE_NAME = 'tenants' then v_entity_id
                  else coalesce(coalesce(v_new, v_old)->>'tenant_id', 'platform') end;
  -- The next seq and hash under the head row's lock. A chain's first event inserts the head with
  -- the genesis hash as a placeholder, then sets its real hash (once per chain, ever).
  insert into audit_heads as h (chain, seq, prev_hash, hash)
  values (v_chain, 1, v_genesis, v_genesis)
  on conflict (chain) do update
    set seq = h.seq + 1,
        prev_hash = h.hash,
        hash = audit_hash(v_chain, h.seq + 1, v_at, v_actor_type, v_actor_id, v_request_id, v_workflow_id,
                          v_operation, TG_OP, TG_TABLE_NAME, v_entity_id, v_before, v_after, h.hash)
  returning seq, prev_hash, hash into v_seq, v_prev, v_hash;
  if v_seq = 1 then
    v_hash := audit_hash(v_chain, 1, v_at, v_actor_type, v_actor_id, v_request_id, v_workflow_id, v_operation,
                         TG_OP, TG_TABLE_NAME, v_entity_id, v_before, v_after, v_genesis);
    update audit_heads set hash = v_hash where chain = v_chain;
  end if;
  insert into audit_events (chain, seq, occurred_at, actor_type, actor_id, request_id, workflow_id, operation,
                            action, entity_type, entity_id, before, after, prev_hash, hash)
  values (v_chain, v_seq, v_at, v_actor_type, v_actor_id, v_request_id, v_workflow_id, v_operation,
          TG_OP, TG_TABLE_NAME, v_entity_id, v_before, v_after, v_prev, v_hash);
  return null;
end $$;`);

    this.addSql(`create function audit_attach(tbl regclass, ignored text[] default '{}') returns void language plpgsql as $$
begin
  if exists (select 1 from pg_trigger where tgrelid = tbl and tgname = 'audit_row') then
    execute format('drop trigger audit_row on %s', tbl);
  end if;
  execute format('create constraint trigger audit_row after insert or update or delete on %s deferrable initially deferred for each row execute function audit_record(%s)',
                 tbl, coalesce((select string_agg(quote_literal(c), ', ') from unnest(ignored) c), ''));
end $$;`);

    this.addSql(`create function audit_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    using errcode = 'insufficient_privilege';
end $$;`);
    this.addSql(`create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function audit_refuse_change();`);
    this.addSql(`create trigger audit_events_no_truncate before truncate on audit_events
  for each statement execute function audit_refuse_change();`);
    this.addSql(`create trigger audit_heads_no_delete before delete on audit_heads
  for each row execute function audit_refuse_change();`);
    this.addSql(`create trigger audit_heads_no_truncate before truncate on audit_heads
  for each statement execute function audit_refuse_change();`);

    for (const table of AUDITED) this.addSql(`select audit_attach('${table}');`);
    // Touched by every authenticated call, every sign-in, every placement: not changes anyone audits.
    this.addSql(`select audit_attach('api_tokens', array['last_used_at']);`);
    this.addSql(`select audit_attach('users', array['failed_login_count', 'last_login_at', 'locked_until', 'mfa_last_step']);`);
    this.addSql(
      `select audit_attach('core_nodes', array['allocated_vcpu', 'allocated_memory_mb', 'allocated_disk_gb']);`,
    );
  }

  override async down(): Promise<void> {
    for (const table of [...AUDITED, 'api_tokens', 'users', 'core_nodes']) {
      this.addSql(`drop trigger if exists audit_row on "${table}";`);
    }
    this.addSql(`drop table if exists "audit_events" cascade;`);
    this.addSql(`drop table if exists "audit_heads" cascade;`);
    this.addSql(`drop function if exists audit_attach(regclass, text[]);`);
    this.addSql(`drop function if exists audit_record();`);
    this.addSql(`drop function if exists audit_refuse_change();`);
    this.addSql(
      `drop function if exists audit_hash(text, bigint, timestamptz, text, text, text, text, text, text, text, text, jsonb, jsonb, text);`,
    );
    this.addSql(`drop function if exists audit_field(text);`);
    this.addSql(`drop function if exists audit_secrets(jsonb);`);
    // The role is the cluster's (other databases may use it): only this database's grants go.
    this.addSql(
      `alter default privileges in schema public revoke select, insert, update, delete on tables from podplane_app;`,
    );
    this.addSql(`alter default privileges in schema public revoke usage, select on sequences from podplane_app;`);
    this.addSql(`revoke all on all tables in schema public from podplane_app;`);
    this.addSql(`revoke all on all sequences in schema public from podplane_app;`);
    this.addSql(`revoke usage on schema public from podplane_app;`);
  }
}

/** Business tables whose every change is audited (bookkeeping and high-churn tables are not: see the README). */
const AUDITED = [
  'tenants',
  'tenant_billing_settings',
  'tenant_quotas',
  'customers',
  'products',
  'cloud_pods',
  'backups',
  'subscriptions',
  'subscription_plan_changes',
  'invoices',
  'invoice_lines',
  'payments',
  'credit_notes',
  'test_clocks',
  'memberships',
];
