# The dev environment's settings: committed, non-secret, and the ONLY variable file.
# Everything that makes dev dev is here; the root's .tf files are the same in every
# environment. Both paths read it: `terraform plan -var-file=environment.tfvars` by hand
# and cloudbuild.yaml (which adds only the build outputs: function_source_dir and
# training_image_uri). Do not create a terraform.tfvars beside it: Terraform loads
# that automatically on a laptop, Cloud Build never sees it (git-ignored), and the two
# paths would apply different things. scripts/deploy_check.sh refuses one.
# Secrets never go here: LLM keys are Secret Manager versions (docs/deploy.md, step 9).
# A setting left out takes the module's default (terraform/modules/cognitive_core/variables.tf).

# Dev: small, scale-to-zero, easy to destroy.
project_id  = "my-project-dev"
region      = "us-central1"
environment = "dev"

# The deployer from terraform/bootstrap: Cloud Build runs as it; it owns the schema.
migrator_service_account = "cc-deployer@my-project-dev.iam.gserviceaccount.com"

# People who may connect to inspect data (never to migrate).
db_iam_users = []

# Custom domains of the web app; <project>.web.app and .firebaseapp.com are always allowed.
cors_origins = []

# LLM key secrets that already hold a version (e.g. ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]).
mounted_llm_secrets = []

log_level = "DEBUG"

function_defaults = {
  min_instances = 0
  max_instances = 3
}

# A public-IP database (IAM-authorised connector only) and no deletion protection.
sql_tier                   = "db-g1-small"
sql_availability_type      = "ZONAL"
sql_retained_backups       = 3
sql_point_in_time_recovery = false
sql_max_connections        = 50
deletion_protection        = false
dataset_retention_days     = 30

# The shared embedding cache (Memorystore, docs/deploy.md): off; with a public database
# it also needs redis_network (the VPC of docs/deploy.md, step 3).
redis_enabled = false

# Daily LLM spend (USD) above which the cost alert fires.
llm_daily_budget_usd = 5

# Who gets the alerts (Cloud Monitoring notification channel ids); empty = console only.
alert_notification_channels = []
