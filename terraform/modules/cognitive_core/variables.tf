# Inputs of one cognitive-core environment. Every default is the cheap, dev-sized
# choice; each environment's environment.tfvars overrides what it needs. Inputs the
# environment roots forward are `nullable = false`: a root passes null for a setting its
# environment.tfvars leaves out, and the default here applies (one home for defaults).

# --- where -------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the environment (also the Firebase project unless firebase_project_id says otherwise)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or dashes."
  }
}

variable "region" {
  description = "Region for Cloud Functions, Cloud SQL, Pub/Sub triggers, Cloud Scheduler and the buckets."
  type        = string
  nullable    = false
  default     = "us-central1"
}

variable "environment" {
  description = "Environment name (dev, staging, prod). Becomes part of every resource name and label."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; defaults to \"cc-<environment>\". Service account ids are <prefix>-<group> and must stay within 30 characters."
  type        = string
  default     = null

  validation {
    condition     = var.name_prefix == null || can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", coalesce(var.name_prefix, "x")))
    error_message = "name_prefix must be 3-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels put on every labelled resource (environment and app labels are always added)."
  type        = map(string)
  default     = {}
}

# --- functions ---------------------------------------------------------------------------

variable "function_source_dir" {
  description = "Folder holding <name>.zip for every function, as written by `make build` (scripts/build_functions.py). Each zip is uploaded under its sha256, so a function redeploys exactly when its code changes."
  type        = string
}

variable "python_runtime" {
  description = "Cloud Functions runtime; keep it on the Python the repository is tested with."
  type        = string
  default     = "python311"
}

variable "build_service_account" {
  description = "Full resource name (projects/<p>/serviceAccounts/<email>) of an existing account Cloud Build should use to build the function images. null (the default) creates <prefix>-build with exactly the rights a function build needs (logs, Artifact Registry, read the sources bucket): newer projects build as the Compute Engine default account, which may have none of them."
  type        = string
  default     = null
}

variable "function_defaults" {
  description = "Sizing applied to every function unless function_overrides says otherwise. Concurrency above 1 needs at least 1 vCPU."
  type = object({
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 5)
    concurrency     = optional(number, 8)
    timeout_seconds = optional(number, 60)
  })
  nullable = false
  default  = {}
}

variable "function_overrides" {
  description = "Per-function sizing overrides, keyed by function name (chat, grading, prediction, feedback, retrain). Unset fields fall back to function_defaults."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    min_instances   = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
    timeout_seconds = optional(number)
  }))
  nullable = false
  default  = {}

  validation {
    condition     = length(setsubtract(keys(var.function_overrides), ["chat", "grading", "prediction", "feedback", "retrain"])) == 0
    error_message = "function_overrides keys must be function names: chat, grading, prediction, feedback, retrain."
  }
}

variable "public_http_functions" {
  description = "Let allUsers invoke the HTTP functions (Firebase Hosting rewrites carry no Google identity; the functions verify Firebase ID tokens themselves). Set false to keep them private, e.g. behind an org policy that forbids allUsers."
  type        = bool
  default     = true
}

variable "cors_origins" {
  description = "Origins allowed by CORS (CORS_ORIGINS): the Firebase Hosting site(s), e.g. https://<project>.web.app."
  type        = list(string)
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens the functions accept (FIREBASE_PROJECT_ID); null means project_id."
  type        = string
  default     = null
}

variable "log_level" {
  description = "LOG_LEVEL for every function."
  type        = string
  nullable    = false
  default     = "INFO"
}

variable "max_request_bytes" {
  description = "MAX_REQUEST_BYTES: the request body limit every function enforces."
  type        = number
  default     = 65536
}

variable "model_pointer_ttl_seconds" {
  description = "MODEL_POINTER_TTL_S: how often a warm instance re-reads models/current.json (a rollback takes effect within this time)."
  type        = number
  default     = 30
}

variable "embedding_backend" {
  description = "EMBEDDING_BACKEND: onnx (the published INT8 encoder) or vertex (Vertex AI text embeddings)."
  type        = string
  default     = "onnx"

  validation {
    condition     = contains(["onnx", "vertex"], var.embedding_backend)
    error_message = "embedding_backend must be onnx or vertex."
  }
}

variable "extra_env" {
  description = "Additional non-secret environment variables for every function (e.g. LLM routing settings added to shared/config.py). Never put secrets here: use llm_secret_names."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_env) : !can(regex("(_KEY|SECRET|PASSWORD|_TOKEN|CREDENTIALS?)$", upper(k)))])
    error_message = "extra_env must not carry secrets (names ending in _KEY, SECRET, PASSWORD, _TOKEN or CREDENTIALS): put them in Secret Manager via llm_secret_names."
  }
}

# --- secrets -----------------------------------------------------------------------------

variable "llm_secret_names" {
  description = "Secret Manager secrets created empty (names only); their values are added out of band with `gcloud secrets versions add`. The secret id is <prefix>-<name with _ as ->; the function sees the env var <name>."
  type        = list(string)
  default     = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
}

variable "mounted_llm_secrets" {
  description = "Which of llm_secret_names the LLM-using functions receive as environment variables. List a secret here only after it has a version: Cloud Functions refuses to deploy a function whose secret has none."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = length(setsubtract(var.mounted_llm_secrets, var.llm_secret_names)) == 0
    error_message = "mounted_llm_secrets must be a subset of llm_secret_names."
  }
}

variable "llm_providers" {
  description = "LLM_PROVIDERS, in fallback order. null means vertex, then every provider whose key is in mounted_llm_secrets (the offline provider stays the last resort)."
  type        = list(string)
  default     = null
}

# --- database ----------------------------------------------------------------------------

variable "sql_database_version" {
  description = "Cloud SQL PostgreSQL version. pgvector (with HNSW) is available on PostgreSQL 13 and later."
  type        = string
  default     = "POSTGRES_17"

  validation {
    condition     = can(regex("^POSTGRES_(1[3-9])$", var.sql_database_version))
    error_message = "sql_database_version must be POSTGRES_13 or later (pgvector with HNSW)."
  }
}

variable "sql_edition" {
  description = "Cloud SQL edition. ENTERPRISE allows the small shared-core tiers; ENTERPRISE_PLUS needs db-perf-optimized-* tiers."
  type        = string
  default     = "ENTERPRISE"
}

variable "sql_tier" {
  description = "Cloud SQL machine tier."
  type        = string
  nullable    = false
  default     = "db-g1-small"
}

variable "sql_availability_type" {
  description = "ZONAL (dev) or REGIONAL (high availability, prod)."
  type        = string
  nullable    = false
  default     = "ZONAL"
}

variable "sql_disk_size_gb" {
  description = "Initial SSD size; storage auto-increase grows it."
  type        = number
  nullable    = false
  default     = 10
}

variable "sql_max_connections" {
  description = "Postgres max_connections. Budget: sum over functions of max_instances * (db_pool_size + db_max_overflow), plus migrations and the training job."
  type        = number
  nullable    = false
  default     = 100
}

variable "sql_private_network" {
  description = "Self link of a VPC network for a private-IP-only instance. null keeps a public IP (reached only through the Cloud SQL connector with IAM auth; no authorized networks are opened). Required in prod: no public address on the production database."
  type        = string
  default     = null

  validation {
    condition     = var.sql_private_network == null || can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/networks/[a-z]([-a-z0-9]*[a-z0-9])?$", coalesce(var.sql_private_network, "x")))
    error_message = "sql_private_network must be projects/<project>/global/networks/<name>."
  }
  validation {
    condition     = var.environment != "prod" || var.sql_private_network != null
    error_message = "prod needs sql_private_network: the production database has no public address (docs/deploy.md, step 3)."
  }
}

variable "vpc_connector_cidr" {
  description = "A free /28 in sql_private_network for the Serverless VPC Access connector the functions use to reach a private-IP instance. Ignored with a public IP."
  type        = string
  default     = "10.8.0.0/28"
}

variable "sql_backup_start_time" {
  description = "Daily backup window start (HH:MM, UTC)."
  type        = string
  default     = "02:00"
}

variable "sql_retained_backups" {
  description = "How many daily backups to keep."
  type        = number
  nullable    = false
  default     = 7
}

variable "sql_point_in_time_recovery" {
  description = "Keep write-ahead logs for point-in-time recovery."
  type        = bool
  nullable    = false
  default     = true
}

variable "deletion_protection" {
  description = "Protect the Cloud SQL instance (Terraform and API level) and keep buckets from being force-destroyed. Always true in prod."
  type        = bool
  nullable    = false
  default     = false

  validation {
    condition     = var.environment != "prod" || var.deletion_protection
    error_message = "prod keeps deletion_protection on (the database and the artifacts bucket)."
  }
}

variable "db_name" {
  description = "Database name (DB_NAME)."
  type        = string
  default     = "cognitive"
}

variable "db_pool_size" {
  description = "DB_POOL_SIZE per function instance."
  type        = number
  default     = 2
}

variable "db_max_overflow" {
  description = "DB_MAX_OVERFLOW per function instance."
  type        = number
  default     = 2
}

variable "migrator_service_account" {
  description = "Email of the service account that runs `python -m shared.db.migrate upgrade` (the Cloud Build service account, or a deployer account). It becomes a Cloud SQL IAM database user with connect rights; null skips it."
  type        = string
  default     = null
}

variable "db_iam_users" {
  description = "Human Google accounts (emails) added as Cloud SQL IAM database users, e.g. to run migrations or inspect data from a laptop."
  type        = list(string)
  nullable    = false
  default     = []
}

# --- artifacts, events, training ---------------------------------------------------------

variable "artifacts_bucket_name" {
  description = "Name of the artifacts bucket (models/, datasets/, training/). null means <project_id>-<prefix>-artifacts (at most 30 + 1 + 16 + 10 = 57 characters)."
  type        = string
  default     = null

  validation {
    condition     = var.artifacts_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", coalesce(var.artifacts_bucket_name, "xxx")))
    error_message = "artifacts_bucket_name must be a valid bucket name of 3-63 characters."
  }
}

variable "bucket_location" {
  description = "Location of the buckets; null means the region."
  type        = string
  default     = null
}

variable "dataset_retention_days" {
  description = "Parquet exports under datasets/ are deleted after this many days (training snapshots reference them by sha256 in the manifest)."
  type        = number
  nullable    = false
  default     = 180
}

variable "noncurrent_version_retention_days" {
  description = "Overwritten or deleted objects (e.g. an older models/current.json) are kept this long by bucket versioning."
  type        = number
  default     = 30
}

variable "retrain_schedule" {
  description = "Cron schedule of the nightly tick (dataset export, then the nightly retrain request)."
  type        = string
  default     = "0 3 * * *"
}

variable "retrain_reconcile_schedule" {
  description = "Cron schedule (UTC) of the tick that records ended Vertex AI training jobs and starts waiting runs."
  type        = string
  default     = "*/15 * * * *"
}

variable "retrain_schedule_time_zone" {
  description = "Time zone of retrain_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "mount_dataset_pseudonym_key" {
  description = "Give the nightly function DATASET_PSEUDONYM_KEY from its secret. Set only after the secret has a version (Cloud Functions refuses to deploy otherwise); until then the nightly export refuses to run."
  type        = bool
  default     = false
}

variable "retrain_max_delivery_attempts" {
  description = "Deliveries of a retrain request before Pub/Sub moves it to the dead-letter topic (5-100)."
  type        = number
  default     = 5
}

variable "attach_dead_letter_with_gcloud" {
  description = "Attach the dead-letter policy to the Eventarc-managed subscription of the retrain trigger with gcloud during apply (the provider cannot configure that subscription). Needs gcloud where Terraform runs; cloudbuild.yaml provides it."
  type        = bool
  default     = true
}

variable "training_image_uri" {
  description = "Container image of model_export/ that the retrain function submits as a Vertex AI custom job (TRAINING_IMAGE_URI). Empty until the image is published."
  type        = string
  nullable    = false
  default     = ""
}

variable "training_machine_type" {
  description = "Machine type of the Vertex AI custom training job (TRAINING_MACHINE_TYPE)."
  type        = string
  default     = "n1-standard-4"
}

# --- monitoring ----------------------------------------------------------------------------

variable "llm_daily_budget_usd" {
  description = "Daily LLM spend (USD, the sum of cost_usd the functions log per call) of the deployment: the router degrades to cheaper choices and then the offline composer before it (LLM_DAILY_BUDGET_USD, shared/llm/budget.py), and the cost alert fires above it."
  type        = number
  nullable    = false
  default     = 10

  validation {
    condition     = var.llm_daily_budget_usd > 0
    error_message = "llm_daily_budget_usd must be positive."
  }
}

variable "llm_user_daily_budget_usd" {
  description = "Daily LLM spend (USD) per student before their calls degrade (LLM_USER_DAILY_BUDGET_USD); null = no per-student cap."
  type        = number
  default     = null

  validation {
    condition     = var.llm_user_daily_budget_usd == null || coalesce(var.llm_user_daily_budget_usd, 1) > 0
    error_message = "llm_user_daily_budget_usd must be positive (or null)."
  }
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) every alert policy notifies; empty shows incidents in the console only."
  type        = list(string)
  nullable    = false
  default     = []
}

variable "alert_thresholds" {
  description = "Alert thresholds: provider failure ratio, chat p95 latency (ms), embedding cache hit-rate floor, 5xx ratio."
  type = object({
    provider_failure_ratio = optional(number, 0.2)
    chat_p95_latency_ms    = optional(number, 5000)
    cache_hit_rate_min     = optional(number, 0.7)
    http_5xx_ratio         = optional(number, 0.02)
  })
  default = {}
}

# --- the shared embedding cache (Memorystore for Redis, redis.tf) -------------------------

variable "redis_enabled" {
  description = "Create a Memorystore for Redis instance (AUTH + TLS) as the shared embedding cache and give chat and grading its REDIS_URL. Needs a VPC: redis_network or sql_private_network."
  type        = bool
  nullable    = false
  default     = false
}

variable "redis_network" {
  description = "Self link of the VPC Memorystore joins (projects/<p>/global/networks/<name>); null = sql_private_network. With a private database both must be the same VPC (the functions have one connector)."
  type        = string
  default     = null

  validation {
    condition     = var.redis_network == null || can(regex("^projects/[^/]+/global/networks/[^/]+$", var.redis_network))
    error_message = "redis_network must be projects/<project>/global/networks/<name>."
  }
}

variable "redis_tier" {
  description = "BASIC (one node; a failure empties the cache, which costs model calls, not answers) or STANDARD_HA (a replica in another zone)."
  type        = string
  nullable    = false
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity (GB). A 384-d float32 vector is 1.5 KB plus a ~90-byte key, so 1 GB holds a few hundred thousand texts (least recently used evicted first)."
  type        = number
  nullable    = false
  default     = 1
}

variable "redis_version" {
  description = "Memorystore Redis version (7.x: the highest TLS connection limit)."
  type        = string
  nullable    = false
  default     = "REDIS_7_2"
}
