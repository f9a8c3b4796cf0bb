# The prod environment's settings: committed, non-secret, and the ONLY variable file.
# Both paths read it: `terraform plan -var-file=environment.tfvars` by hand and
# cloudbuild.yaml (which adds only the build outputs: function_source_dir and
# training_image_uri). Do not create a terraform.tfvars beside it (see dev's copy).
# Secrets never go here: LLM keys are Secret Manager versions (docs/deploy.md, step 9).
# A setting left out takes the module's default (terraform/modules/cognitive_core/variables.tf).

# Prod: deletion protection, high availability, warm chat, no public database address.
project_id  = "my-project-prod"
region      = "us-central1"
environment = "prod"

# The deployer from terraform/bootstrap: Cloud Build runs as it; it owns the schema.
migrator_service_account = "cc-deployer@my-project-prod.iam.gserviceaccount.com"

# People who may connect to inspect data (never to migrate).
db_iam_users = []

# Custom domains of the web app; <project>.web.app and .firebaseapp.com are always allowed.
cors_origins = ["https://learn.example.com"]

# LLM key secrets that already hold a version (e.g. ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]).
mounted_llm_secrets = []

# One warm chat instance: no cold start for the first student of the day (costs money idle).
function_defaults = {
  min_instances = 0
  max_instances = 20
}
function_overrides = {
  chat = { min_instances = 1, max_instances = 50 }
}

# The production database has no public address (docs/deploy.md, step 3 creates the VPC);
# the module refuses prod without it, and without deletion protection.
sql_private_network        = "projects/my-project-prod/global/networks/cognitive-core"
sql_tier                   = "db-custom-2-7680"
sql_availability_type      = "REGIONAL"
sql_disk_size_gb           = 20
sql_retained_backups       = 14
sql_point_in_time_recovery = true
# (chat 50 + 3 others * 20) instances * (pool 2 + overflow 2) = 440, plus migrations and training.
sql_max_connections = 500
deletion_protection = true

# The shared embedding cache (Memorystore with AUTH and TLS, on sql_private_network's VPC;
# docs/deploy.md). Off until the budget has it: turning it on needs no other change.
redis_enabled = false
redis_tier    = "STANDARD_HA"

# Daily LLM spend (USD) above which the cost alert fires.
llm_daily_budget_usd = 50

# Who gets the alerts (Cloud Monitoring notification channel ids, from
# `gcloud beta monitoring channels list`); empty = visible in the console only.
alert_notification_channels = []
