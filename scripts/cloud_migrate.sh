#!/usr/bin/env bash
# Run the migrations (and, with --content, the course content load) on an environment's
# Cloud SQL database as the deployer: the one identity that owns the schema.
#
#   scripts/cloud_migrate.sh ENV [--content] [--outputs tf-outputs.json]
#
# What it does:
#   - reads the environment's Terraform outputs (or the JSON file cloudbuild.yaml saved);
#   - inside Cloud Build on the default pool with a public-IP database: runs
#     scripts/migrate.sh in place (the build already runs as the deployer);
#   - otherwise (a person at a laptop, or a private-IP database): submits
#     cloudbuild.migrate.yaml, which runs scripts/migrate.sh as the deployer, on the
#     environment's private worker pool when the database has no public address
#     (the default pool cannot reach it). Needs roles/iam.serviceAccountUser on the
#     deployer (terraform/bootstrap: deployer_impersonators) and Cloud Build rights.
# Content: CONTENT_COURSE_URI (default gs://<artifacts>/content/course.json),
# CONTENT_NODES_URI (legacy knowledge nodes JSON) or CONTENT_FIRESTORE_COLLECTION.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,19p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
ENV_NAME=$1; shift
content=false outputs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --content) content=true ;;
    --outputs) outputs=$2; shift ;;
    *) usage ;;
  esac
  shift
done

if [ -z "$outputs" ]; then
  outputs=$(mktemp)
  trap 'rm -f "$outputs"' EXIT
  terraform -chdir="terraform/environments/$ENV_NAME" output -json > "$outputs"
fi
out() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['value'])" "$outputs" "$1"; }

SQL_INSTANCE=$(out sql_connection_name)
PROJECT=${SQL_INSTANCE%%:*}
REGION=$(echo "$SQL_INSTANCE" | cut -d: -f2)
BUCKET=$(out artifacts_bucket)
POOL=$(out migrate_worker_pool)
DB_USER_NAME=$(out migrator_db_user)
[ -n "$DB_USER_NAME" ] || { echo "no migrator_db_user: set migrator_service_account in environment.tfvars" >&2; exit 2; }
IP_TYPE=public
[ -n "$POOL" ] && IP_TYPE=private
COURSE=${CONTENT_COURSE_URI:-gs://$BUCKET/content/course.json}

if [ -n "${BUILD_ID:-}" ] && [ -z "$POOL" ]; then
  export CLOUD_SQL_INSTANCE="$SQL_INSTANCE" DB_NAME="$(out db_name)" DB_USER="$DB_USER_NAME"
  export GOOGLE_CLOUD_PROJECT="$PROJECT" GOOGLE_CLOUD_REGION="$REGION" DB_IP_TYPE="$IP_TYPE"
  export MODEL_STORE_URI="$(out model_store_uri)" CONTENT_COURSE_URI="$COURSE"
  if $content; then exec scripts/migrate.sh --content; else exec scripts/migrate.sh; fi
fi

pool_args=()
[ -n "$POOL" ] && pool_args=(--worker-pool "$POOL")
# `^|^` makes | the separator, so no value can break the list (a comma would).
subs="^|^_SQL_INSTANCE=$SQL_INSTANCE|_DB_NAME=$(out db_name)|_DB_USER=$DB_USER_NAME|_DB_IP_TYPE=$IP_TYPE"
subs+="|_MODEL_STORE_URI=$(out model_store_uri)|_CONTENT=$content|_COURSE_URI=$COURSE"
subs+="|_NODES_URI=${CONTENT_NODES_URI:-}|_FIRESTORE_COLLECTION=${CONTENT_FIRESTORE_COLLECTION:-}"
subs+="|_DEPLOYER=${DB_USER_NAME%.iam}.gserviceaccount.com"
echo "submitting cloudbuild.migrate.yaml to $PROJECT ($REGION${POOL:+, pool $POOL}) as ${DB_USER_NAME%.iam}.gserviceaccount.com"
gcloud builds submit --project "$PROJECT" --region "$REGION" "${pool_args[@]}" \
  --config cloudbuild.migrate.yaml --substitutions "$subs" .
