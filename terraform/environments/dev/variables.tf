# The settings environment.tfvars may give. project_id, region and environment are required; the
# rest default here to null, which means the module's own default (its inputs are
# nullable = false), so no default is written twice.

variable "project_id" {
  description = "Google Cloud (and Firebase) project of this environment."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (and the provider's default)."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): part of every resource name; prod turns on the module's production checks."
  type        = string
}

variable "function_source_dir" {
  description = "Folder with the function zips from `make build` (relative to this folder by default; Cloud Build passes its own)."
  type        = string
  default     = "../../../dist"
}

variable "cors_origins" {
  description = "Extra origins allowed by CORS (custom domains of the web app); the project's web.app and firebaseapp.com sites are always allowed."
  type        = list(string)
  default     = []
}

variable "migrator_service_account" {
  description = "Email of the one account that runs migrations and loads content: the deployer from terraform/bootstrap (cc-deployer@<project>.iam.gserviceaccount.com), which Cloud Build runs as."
  type        = string
  default     = null
}


variable "db_iam_users" {
  description = "Module input db_iam_users; null = the module's default."
  type        = list(string)
  default     = null
}

variable "mounted_llm_secrets" {
  description = "Module input mounted_llm_secrets; null = the module's default."
  type        = list(string)
  default     = null
}

variable "training_image_uri" {
  description = "Module input training_image_uri; null = the module's default."
  type        = string
  default     = null
}

variable "extra_env" {
  description = "Module input extra_env; null = the module's default."
  type        = map(string)
  default     = null
}

variable "log_level" {
  description = "Module input log_level; null = the module's default."
  type        = string
  default     = null
}

variable "llm_daily_budget_usd" {
  description = "Module input llm_daily_budget_usd; null = the module's default."
  type        = number
  default     = null
}

variable "llm_user_daily_budget_usd" {
  description = "Module input llm_user_daily_budget_usd; null = no per-student cap."
  type        = number
  default     = null
}

variable "alert_notification_channels" {
  description = "Module input alert_notification_channels; null = the module's default."
  type        = list(string)
  default     = null
}

variable "function_defaults" {
  description = "Module input function_defaults; null = the module's default."
  type        = any
  default     = null
}

variable "function_overrides" {
  description = "Module input function_overrides; null = the module's default."
  type        = any
  default     = null
}

variable "sql_tier" {
  description = "Module input sql_tier; null = the module's default."
  type        = string
  default     = null
}

variable "sql_availability_type" {
  description = "Module input sql_availability_type; null = the module's default."
  type        = string
  default     = null
}

variable "sql_disk_size_gb" {
  description = "Module input sql_disk_size_gb; null = the module's default."
  type        = number
  default     = null
}

variable "sql_retained_backups" {
  description = "Module input sql_retained_backups; null = the module's default."
  type        = number
  default     = null
}

variable "sql_point_in_time_recovery" {
  description = "Module input sql_point_in_time_recovery; null = the module's default."
  type        = bool
  default     = null
}

variable "sql_max_connections" {
  description = "Module input sql_max_connections; null = the module's default."
  type        = number
  default     = null
}

variable "sql_private_network" {
  description = "Module input sql_private_network; null = the module's default."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Module input deletion_protection; null = the module's default."
  type        = bool
  default     = null
}

variable "dataset_retention_days" {
  description = "Module input dataset_retention_days; null = the module's default."
  type        = number
  default     = null
}

variable "redis_enabled" {
  description = "Module input redis_enabled; null = the module's default."
  type        = bool
  default     = null
}

variable "redis_network" {
  description = "Module input redis_network; null = the module's default."
  type        = string
  default     = null
}

variable "redis_tier" {
  description = "Module input redis_tier; null = the module's default."
  type        = string
  default     = null
}

variable "redis_memory_size_gb" {
  description = "Module input redis_memory_size_gb; null = the module's default."
  type        = number
  default     = null
}
