#!/bin/sh
# The application's database roles, made idempotently before every migration run (the compose
# `db-roles` job): `podplane_app` (NOLOGIN, owns nothing; migrations grant it row rights) and its
# member APP_DB_USER, the login the API and the worker connect as. The schema's owner (PGUSER,
# POSTGRES_USER) runs migrations only. Re-run on every `up`, so an existing volume gets the roles
# too and a changed APP_DB_PASSWORD takes effect.
set -eu
: "${PGHOST:?}" "${PGUSER:?}" "${PGPASSWORD:?}" "${APP_DB_USER:?}" "${APP_DB_PASSWORD:?}"

until pg_isready -q; do
  echo "waiting for PostgreSQL at $PGHOST"; sleep 1
done
psql -v ON_ERROR_STOP=1 -v app_user="$APP_DB_USER" -v app_password="$APP_DB_PASSWORD" <<'SQL'
select 'create role podplane_app nologin'
 where not exists (select 1 from pg_roles where rolname = 'podplane_app') \gexec
select format('create role %I login', :'app_user')
 where not exists (select 1 from pg_roles where rolname = :'app_user') \gexec
select format('alter role %I login nosuperuser nocreatedb nocreaterole password %L', :'app_user', :'app_password') \gexec
select format('grant podplane_app to %I', :'app_user') \gexec
SQL
echo "database roles are in place"
