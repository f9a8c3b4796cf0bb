output "function_urls" {
  description = "HTTPS URL of each HTTP function."
  value       = module.cognitive_core.function_urls
}

output "function_names" {
  description = "Deployed function name per function."
  value       = module.cognitive_core.function_names
}

output "firebase_hosting_rewrites" {
  description = "The rewrites array for firebase.json."
  value       = module.cognitive_core.firebase_hosting_rewrites
}

output "artifacts_bucket" {
  description = "The artifacts bucket."
  value       = module.cognitive_core.artifacts_bucket
}

output "model_store_uri" {
  description = "MODEL_STORE_URI of this environment."
  value       = module.cognitive_core.model_store_uri
}

output "sql_connection_name" {
  description = "CLOUD_SQL_INSTANCE of this environment."
  value       = module.cognitive_core.sql_connection_name
}

output "sql_instance" {
  description = "Cloud SQL instance name."
  value       = module.cognitive_core.sql_instance
}

output "db_name" {
  description = "DB_NAME of this environment."
  value       = module.cognitive_core.db_name
}

output "db_users" {
  description = "IAM database user per service-account group."
  value       = module.cognitive_core.db_users
}

output "migrator_db_user" {
  description = "DB_USER for migrations."
  value       = module.cognitive_core.migrator_db_user
}

output "service_accounts" {
  description = "Runtime service account per group."
  value       = module.cognitive_core.service_accounts
}

output "retrain_topic" {
  description = "The retrain-requests topic."
  value       = module.cognitive_core.retrain_topic
}

output "retrain_dead_letter_topic" {
  description = "The retrain-requests dead-letter topic."
  value       = module.cognitive_core.retrain_dead_letter_topic
}

output "retrain_trigger" {
  description = "Eventarc trigger of the retrain function."
  value       = module.cognitive_core.retrain_trigger
}

output "llm_secret_ids" {
  description = "Secret id per LLM key."
  value       = module.cognitive_core.llm_secret_ids
}

output "db_bootstrap_sql" {
  description = "One-time SQL to run as postgres."
  value       = module.cognitive_core.db_bootstrap_sql
}

output "db_runtime_grants_sql" {
  description = "SQL the migrator runs after every migration."
  value       = module.cognitive_core.db_runtime_grants_sql
}

output "build_service_account" {
  description = "Account the function images are built as."
  value       = module.cognitive_core.build_service_account
}

output "migrate_worker_pool" {
  description = "Private worker pool for the migrate build (empty with a public IP)."
  value       = module.cognitive_core.migrate_worker_pool
}

output "monitoring_dashboard" {
  description = "Cloud Monitoring dashboard id."
  value       = module.cognitive_core.monitoring_dashboard
}

output "alert_policies" {
  description = "Alert policy id per alert."
  value       = module.cognitive_core.alert_policies
}
