#!/bin/sh
# Creates and migrates Temporal's two PostgreSQL databases (run by the compose `temporal-schema` job).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@"; }

until tool --db postgres validate-health >/dev/null 2>&1; do
  echo "waiting for PostgreSQL at $POSTGRES_SEEDS"; sleep 1
done
for pair in "temporal:temporal" "temporal_visibility:visibility"; do
  db=${pair%%:*}; dir=${pair##*:}
  tool --db "$db" create-database || true
  tool --db "$db" setup-schema -v 0.0
  tool --db "$db" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo "Temporal schemas are up to date"
