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
  description = "Email of the account that runs migrations (the Cloud Build service account)."
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
  description = "Self link of a VPC for a private-IP-only Cloud SQL instance; null keeps public IP behind the IAM-authenticated connector."
  type        = string
  default     = null
}

variable "extra_env" {
  description = "Extra non-secret environment variables for every function (LLM routing settings and the like)."
  type        = map(string)
  default     = {}
}
