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
  description = "Email of the account that runs migrations (the Cloud Build service account)."
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
