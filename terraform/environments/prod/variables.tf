variable "project_id" {
  description = "Google Cloud (and Firebase) project of the prod environment."
  type        = string
}

variable "region" {
  description = "Region of every regional resource."
  type        = string
  default     = "us-central1"
}

variable "cors_origins" {
  description = "Extra origins allowed by CORS (custom domains of the web app); the project's web.app and firebaseapp.com sites are always allowed."
  type        = list(string)
  default     = []
}

variable "function_source_dir" {
  description = "Folder with the function zips from `make build` (relative to this folder by default)."
  type        = string
  default     = "../../../dist"
}

variable "migrator_service_account" {
  description = "Email of the one account that runs migrations and loads content: the deployer from terraform/bootstrap (cc-deployer@<project>.iam.gserviceaccount.com), which Cloud Build runs as."
  type        = string
  default     = null
}

variable "mounted_llm_secrets" {
  description = "LLM key secrets that already hold a value and should reach the functions (e.g. [\"OPENAI_API_KEY\"])."
  type        = list(string)
  default     = []
}

variable "training_image_uri" {
  description = "Container image of model_export/ for Vertex AI training jobs (empty until published)."
  type        = string
  default     = ""
}

variable "chat_min_instances" {
  description = "Warm chat instances (no cold start for the first student of the day); costs money while idle."
  type        = number
  default     = 1
}

variable "sql_private_network" {
  description = "Self link of the VPC of the private-IP-only Cloud SQL instance (projects/<p>/global/networks/<name>). Required in prod: no public address on the production database."
  type        = string

  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/networks/[a-z]([-a-z0-9]*[a-z0-9])?$", var.sql_private_network))
    error_message = "sql_private_network must be projects/<project>/global/networks/<name>."
  }
}

variable "db_iam_users" {
  description = "People (emails) who may connect to the database to inspect data (member of cognitive_runtime; migrations run as the deployer only)."
  type        = list(string)
  default     = []
}

variable "extra_env" {
  description = "Extra non-secret environment variables for every function (LLM routing settings and the like)."
  type        = map(string)
  default     = {}
}

variable "llm_daily_budget_usd" {
  description = "Daily LLM spend (USD, as the functions estimate it) above which the cost alert fires."
  type        = number
  default     = 10
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) the alert policies notify; empty shows incidents in the console only."
  type        = list(string)
  default     = []
}
