variable "project_id" {
  description = "Google Cloud (and Firebase) project of the dev environment."
  type        = string
}

variable "region" {
  description = "Region of every regional resource."
  type        = string
  default     = "us-central1"
}

variable "cors_origins" {
  description = "Origins allowed by CORS: the dev Hosting site and local development."
  type        = list(string)
  default     = ["http://localhost:5000", "http://127.0.0.1:5000"]
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

variable "db_iam_users" {
  description = "Developers (emails) who may connect to the dev database with their own Google identity."
  type        = list(string)
  default     = []
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
