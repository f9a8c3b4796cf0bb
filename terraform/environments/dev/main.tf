# The dev environment: small, scale-to-zero, easy to destroy.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "cognitive_core" {
  source = "../../modules/cognitive_core"

  project_id  = var.project_id
  region      = var.region
  environment = "dev"

  function_source_dir      = var.function_source_dir
  cors_origins             = concat(["https://${var.project_id}.web.app", "https://${var.project_id}.firebaseapp.com"], var.cors_origins)
  migrator_service_account = var.migrator_service_account
  db_iam_users             = var.db_iam_users
  mounted_llm_secrets      = var.mounted_llm_secrets
  training_image_uri       = var.training_image_uri
  extra_env                = var.extra_env

  llm_daily_budget_usd        = var.llm_daily_budget_usd
  alert_notification_channels = var.alert_notification_channels
  log_level                   = "DEBUG"

  function_defaults = {
    min_instances = 0
    max_instances = 3
  }

  sql_tier                   = "db-g1-small"
  sql_availability_type      = "ZONAL"
  sql_retained_backups       = 3
  sql_point_in_time_recovery = false
  sql_max_connections        = 50
  deletion_protection        = false
  dataset_retention_days     = 30
}
