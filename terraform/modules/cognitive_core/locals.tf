# The one table that says what is deployed and with which rights. Adding a function
# means one line in `functions` (tests/deploy/test_terraform_functions.py checks that every
# functions/<name>/main.py has one, with the right trigger kind).

locals {
  prefix      = coalesce(var.name_prefix, "cc-${var.environment}")
  firebase_id = coalesce(var.firebase_project_id, var.project_id)
  location    = coalesce(var.bucket_location, var.region)
  private_sql = var.sql_private_network != null
  # The VPC the functions join through the Serverless VPC Access connector (sql.tf): the
  # private database's, else the one Memorystore is on. One VPC: redis_network may only
  # differ from sql_private_network when the database has a public address.
  vpc_network = var.sql_private_network != null ? var.sql_private_network : (var.redis_enabled ? var.redis_network : null)
  use_vpc     = local.vpc_network != null

  # The account Cloud Build builds the function images as: the one this module
  # creates (iam.tf, google_service_account.build) unless build_service_account names one.
  build_service_account = coalesce(var.build_service_account, try(google_service_account.build[0].id, null))

  labels = merge(var.labels, {
    app         = "cognitive-core"
    environment = var.environment
  })

  # Function name -> trigger kind and the service-account group it runs as.
  # The entry point equals the name (functions/<name>/main.py defines `def <name>`).
  functions = {
    chat       = { kind = "http", group = "tutor" }
    grading    = { kind = "http", group = "tutor" }
    prediction = { kind = "http", group = "predictor" }
    feedback   = { kind = "http", group = "feedback" }
    retrain    = { kind = "event", group = "retrain" }
    nightly    = { kind = "event", group = "nightly" }
  }
  http_functions  = { for name, f in local.functions : name => f if f.kind == "http" }
  event_functions = { for name, f in local.functions : name => f if f.kind == "event" }

  # The topic each event function is triggered by.
  event_topics = {
    retrain = google_pubsub_topic.retrain_requests.id
    nightly = google_pubsub_topic.learning_nightly.id
  }

  # Service-account groups and what each may do (least privilege):
  #   models: read    = objectViewer on the artifacts bucket (load models/)
  #           write   = objectAdmin on the artifacts bucket (publish models/, datasets/)
  #           datasets = objectAdmin on datasets/ only (an IAM condition on the prefix)
  #   llm             = Vertex AI user (Gemini, embeddings) + the LLM key secrets
  #   publish         = publisher on retrain-requests (the outbox sweep after a threshold crossing)
  #   train           = Vertex AI user + act as the trainer account (submit custom jobs)
  #   nightly         = the daily tick: writes datasets/, publishes the outbox; the only
  #                     group that reads DATASET_PSEUDONYM_KEY; llm for the silver labels
  #                     (an LLM grades unlabelled queries: shared/learning/silver.py)
  #   cache           = embeds text, so reads REDIS_URL when redis_enabled (redis.tf)
  # feedback reads models/ for the intent taxonomy that labels are checked against;
  # predictor, tutor and feedback publish the retrain outbox right after their commits.
  # Every group also gets Cloud SQL client + IAM database login (the trainer reads the
  # database to export training data).
  groups = {
    tutor     = { models = "read", llm = true, publish = true, train = false, cache = true }
    predictor = { models = "read", llm = false, publish = true, train = false, cache = false }
    feedback  = { models = "read", llm = false, publish = true, train = false, cache = false }
    retrain   = { models = "write", llm = false, publish = false, train = true, cache = false }
    trainer   = { models = "write", llm = false, publish = false, train = false, cache = false }
    nightly   = { models = "datasets", llm = true, publish = true, train = false, cache = false }
  }

  # Sizing: function_overrides, then what a function needs by nature, then the defaults.
  # retrain only records a run and submits a job: one message at a time, and the
  # longest timeout an event-driven function may have.
  builtin_sizing = {
    retrain = { concurrency = 1, timeout_seconds = 540 }
    nightly = { concurrency = 1, timeout_seconds = 540 }
  }
  sizing = {
    for name in keys(local.functions) : name => {
      for field in keys(var.function_defaults) : field => coalesce(
        try(var.function_overrides[name][field], null),
        try(local.builtin_sizing[name][field], null),
        var.function_defaults[field],
      )
    }
  }

  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${var.project_id}-${local.prefix}-artifacts")
  # Short on purpose: project id (<= 30) + prefix (<= 16) + "-src" stays within the
  # 63-character limit that "<artifacts bucket>-sources" could exceed.
  sources_bucket  = "${var.project_id}-${local.prefix}-src"
  model_store_uri = "gs://${local.artifacts_bucket}/models"
  datasets_uri    = "gs://${local.artifacts_bucket}/datasets"

  # Postgres user name of an IAM service account: its email without ".gserviceaccount.com".
  db_users = { for g, sa in google_service_account.group : g => trimsuffix(sa.email, ".gserviceaccount.com") }

  # What shared/config.py reads, set identically for every function (extra_env cannot
  # override these).
  common_env = merge(var.extra_env, local.cloud_env, local.budget_env)
  # The LLM budgets the router enforces (shared/llm/budget.py); the cost alert uses the same figure.
  budget_env = merge(
    { LLM_DAILY_BUDGET_USD = tostring(var.llm_daily_budget_usd) },
    var.llm_user_daily_budget_usd == null ? {} : { LLM_USER_DAILY_BUDGET_USD = tostring(var.llm_user_daily_budget_usd) },
  )
  cloud_env = {
    COGNITIVE_ENV               = "cloud"
    GOOGLE_CLOUD_PROJECT        = var.project_id
    GOOGLE_CLOUD_REGION         = var.region
    STATE_DIR                   = "/tmp/cognitive"
    CLOUD_SQL_INSTANCE          = google_sql_database_instance.main.connection_name
    DB_NAME                     = google_sql_database.main.name
    DB_IAM_AUTH                 = "true"
    DB_IP_TYPE                  = local.private_sql ? "private" : "public"
    DB_POOL_SIZE                = tostring(var.db_pool_size)
    DB_MAX_OVERFLOW             = tostring(var.db_max_overflow)
    CORS_ORIGINS                = join(",", var.cors_origins)
    MAX_REQUEST_BYTES           = tostring(var.max_request_bytes)
    FIREBASE_PROJECT_ID         = local.firebase_id
    FIREBASE_AUTH_EMULATOR_HOST = "" # empty = verify real Firebase ID tokens (signature included)
    MODEL_STORE_URI             = local.model_store_uri
    MODEL_POINTER_TTL_S         = tostring(var.model_pointer_ttl_seconds)
    EMBEDDING_BACKEND           = var.embedding_backend
    RETRAIN_TOPIC               = google_pubsub_topic.retrain_requests.id
    LLM_PROVIDERS               = join(",", local.llm_providers)
    LOG_LEVEL                   = var.log_level
  }

  # Only the retrain function submits training jobs.
  training_env = {
    DATASETS_URI             = local.datasets_uri
    TRAINING_IMAGE_URI       = var.training_image_uri
    TRAINING_MACHINE_TYPE    = var.training_machine_type
    TRAINING_SERVICE_ACCOUNT = google_service_account.group["trainer"].email
    TRAINING_STAGING_URI     = "gs://${local.artifacts_bucket}/training"
    TRAINING_SHARED_DATA_URI = "gs://${local.artifacts_bucket}/shared-data"
  }

  function_env = {
    for name, f in local.functions : name => merge(
      local.common_env,
      { for k, v in local.training_env : k => v if f.group == "retrain" },
      f.group == "nightly" ? { DATASETS_URI = local.datasets_uri } : {},
      var.redis_enabled && local.groups[f.group].cache ? { REDIS_CA_CERT = local.redis_ca_cert } : {},
      {
        DB_USER = local.db_users[f.group]
        # One intra-op thread per vCPU: more only adds contention on a small instance.
        ONNX_THREADS = tostring(max(1, floor(tonumber(local.sizing[name].cpu))))
      },
    )
  }

  # OPENAI_API_KEY -> openai, ANTHROPIC_API_KEY -> anthropic.
  llm_providers = var.llm_providers != null ? var.llm_providers : concat(
    ["vertex"],
    [for name in var.mounted_llm_secrets : lower(trimsuffix(name, "_API_KEY"))],
  )

  # The Memorystore server CA(s), PEM: during a CA rotation both are trusted.
  redis_ca_cert = var.redis_enabled ? join("", google_redis_instance.cache[0].server_ca_certs[*].cert) : ""

  # Secret env var name -> secret id, for the secrets that already hold a value.
  mounted_secrets = { for name in var.mounted_llm_secrets : name => google_secret_manager_secret.llm[name].secret_id }
}
