output "name_prefix" {
  description = "Prefix of every resource name in this environment."
  value       = local.prefix
}

output "function_names" {
  description = "Deployed function name per function (the functionId in firebase.json rewrites)."
  value = merge(
    { for k, f in google_cloudfunctions2_function.http : k => f.name },
    { for k, f in google_cloudfunctions2_function.event : k => f.name },
  )
}

output "function_urls" {
  description = "HTTPS URL of each HTTP function (Firebase Hosting rewrites /api/<name>/** to it)."
  value       = { for k, f in google_cloudfunctions2_function.http : k => f.service_config[0].uri }
}

output "firebase_hosting_rewrites" {
  description = "The `rewrites` array for firebase.json (docs/deploy.md), one pair per HTTP function."
  value = flatten([
    for k, f in google_cloudfunctions2_function.http : [
      for source in ["/api/${k}", "/api/${k}/**"] : {
        source   = source
        function = { functionId = f.name, region = var.region }
      }
    ]
  ])
}

output "artifacts_bucket" {
  description = "The artifacts bucket (models/, datasets/, training/)."
  value       = google_storage_bucket.artifacts.name
}

output "model_store_uri" {
  description = "MODEL_STORE_URI: where `python -m model_export --store ... build|promote` publishes and the functions read."
  value       = local.model_store_uri
}

output "sources_bucket" {
  description = "Bucket holding the function source zips."
  value       = google_storage_bucket.sources.name
}

output "sql_connection_name" {
  description = "CLOUD_SQL_INSTANCE (project:region:instance) for the connector, e.g. to run migrations."
  value       = google_sql_database_instance.main.connection_name
}

output "sql_instance" {
  description = "Cloud SQL instance name (for gcloud sql ...)."
  value       = google_sql_database_instance.main.name
}

output "db_name" {
  description = "DB_NAME."
  value       = google_sql_database.main.name
}

output "db_users" {
  description = "IAM database user (DB_USER) per service-account group."
  value       = local.db_users
}

output "migrator_db_user" {
  description = "DB_USER for running migrations as the migrator service account (null when none is configured)."
  value       = var.migrator_service_account == null ? null : google_sql_user.migrator[0].name
}

output "service_accounts" {
  description = "Runtime service account email per group."
  value       = { for g, sa in google_service_account.group : g => sa.email }
}

output "retrain_topic" {
  description = "RETRAIN_TOPIC: full id of the retrain-requests topic."
  value       = google_pubsub_topic.retrain_requests.id
}

output "retrain_dead_letter_topic" {
  description = "Dead-letter topic of retrain requests; read it through the *-dead-letter-inbox subscription."
  value       = google_pubsub_topic.retrain_dead_letter.id
}

output "retrain_trigger" {
  description = "Eventarc trigger of the retrain function (its subscription carries the dead-letter policy)."
  value       = google_cloudfunctions2_function.event["retrain"].event_trigger[0].trigger
}

output "llm_secret_ids" {
  description = "Secret Manager secret id per LLM key env var; add values with `gcloud secrets versions add <id> --data-file=-`."
  value       = { for name, s in google_secret_manager_secret.llm : name => s.secret_id }
}

output "db_bootstrap_sql" {
  description = "One-time SQL to run as `postgres` (roles for the IAM database users); see docs/deploy.md."
  value       = local.db_bootstrap_sql
}

output "db_runtime_grants_sql" {
  description = "SQL the migrator runs after every migration (table rights of the runtime role)."
  value       = local.db_runtime_grants_sql
}

output "build_service_account" {
  description = "Resource name of the account Cloud Build builds the function images as."
  value       = local.build_service_account
}

output "migrate_worker_pool" {
  description = "Private Cloud Build worker pool that can reach a private-IP database (empty with a public IP): cloudbuild.migrate.yaml runs there."
  value       = local.private_sql ? google_cloudbuild_worker_pool.private[0].id : ""
}

output "monitoring_dashboard" {
  description = "Id of the Cloud Monitoring dashboard (console: Monitoring > Dashboards)."
  value       = google_monitoring_dashboard.main.id
}

output "alert_policies" {
  description = "Alert policy id per alert."
  value       = { for k, a in google_monitoring_alert_policy.alert : k => a.name }
}

output "redis_instance" {
  description = "The Memorystore instance of the shared embedding cache (id), or empty when redis_enabled is false."
  value       = var.redis_enabled ? google_redis_instance.cache[0].id : ""
}

output "redis_url_secret" {
  description = "Secret Manager secret holding REDIS_URL (with the AUTH string), or empty when redis_enabled is false."
  value       = var.redis_enabled ? google_secret_manager_secret.redis_url[0].secret_id : ""
}
