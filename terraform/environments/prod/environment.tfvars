# The prod environment's settings: committed, non-secret, and the ONLY variable file.
# Both paths read it: `terraform plan -var-file=environment.tfvars` by hand and
# cloudbuild.yaml (which adds only the build outputs: function_source_dir and
# training_image_uri). Do not create a terraform.tfvars beside it (see dev's copy).
# Secrets never go here: LLM keys are Secret Manager versions (docs/deploy.md, step 9).

project_id = "my-project-prod"
region     = "us-central1"

# The deployer from terraform/bootstrap: Cloud Build runs as it; it owns the schema.
migrator_service_account = "cc-deployer@my-project-prod.iam.gserviceaccount.com"

# People who may connect to inspect data (never to migrate).
db_iam_users = []

# Custom domains of the web app; <project>.web.app and .firebaseapp.com are always allowed.
cors_origins = ["https://learn.example.com"]

# The production database has no public address (docs/deploy.md, step 3 creates the VPC).
sql_private_network = "projects/my-project-prod/global/networks/cognitive-core"

# LLM key secrets that already hold a version (e.g. ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]).
mounted_llm_secrets = []

chat_min_instances = 1

# Daily LLM spend (USD) above which the cost alert fires.
llm_daily_budget_usd = 50

# Who gets the alerts (Cloud Monitoring notification channel ids, from
# `gcloud beta monitoring channels list`); empty = visible in the console only.
alert_notification_channels = []
