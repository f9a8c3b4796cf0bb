# An environment root: the provider, the state and the module, nothing else. What differs
# between environments is data, in environment.tfvars beside this file. main.tf,
# variables.tf, outputs.tf and versions.tf are the same file in every environment
# (tests/deploy/test_terraform_module.py keeps them identical): Terraform has no include,
# and a directory per environment keeps one state, one provider lock and one .terraform
# per environment, which one shared root would mix up on a laptop.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "cognitive_core" {
  source = "../../modules/cognitive_core"

  project_id  = var.project_id
  region      = var.region
  environment = var.environment

  function_source_dir      = var.function_source_dir
  cors_origins             = concat(["https://${var.project_id}.web.app", "https://${var.project_id}.firebaseapp.com"], var.cors_origins)
  migrator_service_account = var.migrator_service_account
  db_iam_users             = var.db_iam_users
  mounted_llm_secrets      = var.mounted_llm_secrets
  training_image_uri       = var.training_image_uri
  extra_env                = var.extra_env
  log_level                = var.log_level

  llm_daily_budget_usd        = var.llm_daily_budget_usd
  llm_user_daily_budget_usd   = var.llm_user_daily_budget_usd
  alert_notification_channels = var.alert_notification_channels

  function_defaults  = var.function_defaults
  function_overrides = var.function_overrides

  sql_tier                   = var.sql_tier
  sql_availability_type      = var.sql_availability_type
  sql_disk_size_gb           = var.sql_disk_size_gb
  sql_retained_backups       = var.sql_retained_backups
  sql_point_in_time_recovery = var.sql_point_in_time_recovery
  sql_max_connections        = var.sql_max_connections
  sql_private_network        = var.sql_private_network
  deletion_protection        = var.deletion_protection
  dataset_retention_days     = var.dataset_retention_days

  redis_enabled        = var.redis_enabled
  redis_network        = var.redis_network
  redis_tier           = var.redis_tier
  redis_memory_size_gb = var.redis_memory_size_gb
}
