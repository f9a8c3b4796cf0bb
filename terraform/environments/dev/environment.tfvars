# The dev environment's settings: committed, non-secret, and the ONLY variable file.
# Both paths read it: `terraform plan -var-file=environment.tfvars` by hand and
# cloudbuild.yaml (which adds only the build outputs: function_source_dir and
# training_image_uri). Do not create a terraform.tfvars beside it: Terraform loads
# that automatically on a laptop, Cloud Build never sees it (git-ignored), and the two
# paths would apply different things. scripts/deploy_check.sh refuses one.
# Secrets never go here: LLM keys are Secret Manager versions (docs/deploy.md, step 9).

project_id = "my-project-dev"
region     = "us-central1"

# The deployer from terraform/bootstrap: Cloud Build runs as it; it owns the schema.
migrator_service_account = "cc-deployer@my-project-dev.iam.gserviceaccount.com"

# People who may connect to inspect data (never to migrate).
db_iam_users = []

# Custom domains of the web app; <project>.web.app and .firebaseapp.com are always allowed.
cors_origins = []

# LLM key secrets that already hold a version (e.g. ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]).
mounted_llm_secrets = []

# Daily LLM spend (USD) above which the cost alert fires.
llm_daily_budget_usd = 5

# Who gets the alerts (Cloud Monitoring notification channel ids); empty = console only.
alert_notification_channels = []
