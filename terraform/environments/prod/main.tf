# The prod environment: deletion protection, high availability, warm chat.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "cognitive_core" {
  source = "../../modules/cognitive_core"

  project_id  = var.project_id
  region      = var.region
  environment = "prod"

  function_source_dir      = var.function_source_dir
  cors_origins             = concat(["https://${var.project_id}.web.app", "https://${var.project_id}.firebaseapp.com"], var.cors_origins)
  migrator_service_account = var.migrator_service_account
  db_iam_users             = var.db_iam_users
  mounted_llm_secrets      = var.mounted_llm_secrets
  training_image_uri       = var.training_image_uri
  extra_env                = var.extra_env

  llm_daily_budget_usd        = var.llm_daily_budget_usd
  alert_notification_channels = var.alert_notification_channels

  function_defaults = {
    min_instances = 0
    max_instances = 20
  }
  function_overrides = {
    chat = { min_instances = var.chat_min_instances, max_instances = 50 }
  }

  sql_tier                   = "db-custom-2-7680"
  sql_availability_type      = "REGIONAL"
  sql_disk_size_gb           = 20
  sql_retained_backups       = 14
  sql_point_in_time_recovery = true
  # (chat 50 + 3 others * 20) instances * (pool 2 + overflow 2) = 440, plus migrations and training.
  sql_max_connections = 500
  sql_private_network = var.sql_private_network
  deletion_protection = true
}
