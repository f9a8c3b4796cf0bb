#!/usr/bin/env bash
# Migrate the schema, grant the runtime role its table rights and, with --content, load
# the course content: as the ONE identity that owns the schema (the deployer).
#
#   scripts/migrate.sh [--content]
#
# Runs where the database is reachable and credentials are the deployer's: inside
# cloudbuild.migrate.yaml (private pool for a private-IP database) or the migrate step
# of cloudbuild.yaml. People do not run it with their own account (the tables would get
# a second owner and `CREATE EXTENSION vector` is refused to them): they run
# scripts/cloud_migrate.sh, which submits the build that runs this.
#
# Reads: CLOUD_SQL_INSTANCE, DB_NAME, DB_USER (the deployer's IAM database user),
# GOOGLE_CLOUD_PROJECT, DB_IP_TYPE (public|private); with --content also MODEL_STORE_URI
# and CONTENT_COURSE_URI / CONTENT_NODES_URI / CONTENT_FIRESTORE_COLLECTION.
set -euo pipefail
cd "$(dirname "$0")/.."

content=false
[ "${1:-}" = "--content" ] && content=true

for v in CLOUD_SQL_INSTANCE DB_NAME DB_USER GOOGLE_CLOUD_PROJECT; do
  [ -n "${!v:-}" ] || { echo "scripts/migrate.sh: $v is not set" >&2; exit 2; }
done
case "$DB_USER" in
  *.iam) ;;
  *) echo "scripts/migrate.sh: DB_USER=$DB_USER is not a service account's database user (<sa>@<project>.iam): migrations run as the deployer only" >&2; exit 2 ;;
esac
export COGNITIVE_ENV=cloud DB_IAM_AUTH=true DB_IP_TYPE="${DB_IP_TYPE:-public}"

PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
fi

"$PY" -m shared.db.migrate upgrade
echo "schema at revision: $("$PY" -m shared.db.migrate current)"
# Table rights of the runtime role (idempotent; the deployer owns the tables).
"$PY" terraform/modules/cognitive_core/scripts/run_sql.py terraform/modules/cognitive_core/templates/db_runtime_grants.sql

if $content; then
  args=()
  [ -n "${CONTENT_COURSE_URI:-}" ] && args+=(--course "$CONTENT_COURSE_URI")
  [ -n "${CONTENT_NODES_URI:-}" ] && args+=(--nodes "$CONTENT_NODES_URI")
  [ -n "${CONTENT_FIRESTORE_COLLECTION:-}" ] && args+=(--firestore "$CONTENT_FIRESTORE_COLLECTION")
  if [ ${#args[@]} -eq 0 ]; then
    echo "scripts/migrate.sh --content: set CONTENT_COURSE_URI and/or CONTENT_NODES_URI or CONTENT_FIRESTORE_COLLECTION" >&2
    exit 2
  fi
  "$PY" scripts/load_content.py "${args[@]}"
fi
