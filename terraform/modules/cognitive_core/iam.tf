# One runtime service account per function group (see local.groups), each with
# only the rights its group needs, granted on the narrowest resource possible.

resource "google_service_account" "group" {
  for_each = local.groups

  project      = var.project_id
  account_id   = "${local.prefix}-${each.key}"
  display_name = "cognitive-core ${var.environment}: ${each.key}"
  description  = "Runtime identity of the ${each.key} group (${join(", ", [for n, f in local.functions : n if f.group == each.key])})."

  depends_on = [google_project_service.api]
}

# --- Cloud SQL: connect through the connector, log in as an IAM database user ----------
# Both roles are project-level by design: Cloud SQL has no instance-level IAM.

resource "google_project_iam_member" "sql_client" {
  for_each = google_service_account.group

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = each.value.member
}

resource "google_project_iam_member" "sql_instance_user" {
  for_each = google_service_account.group

  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = each.value.member
}

# --- the artifacts bucket: read for serving, write for publishing ------------------------

resource "google_storage_bucket_iam_member" "artifacts_reader" {
  for_each = { for g, cfg in local.groups : g => cfg if cfg.models == "read" }

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.group[each.key].member
}

resource "google_storage_bucket_iam_member" "artifacts_admin" {
  for_each = { for g, cfg in local.groups : g => cfg if cfg.models == "write" }

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.group[each.key].member
}

# The nightly export writes datasets/ only: object admin limited by an IAM condition to
# that prefix (the bucket has uniform bucket-level access), so it can never touch models/.
resource "google_storage_bucket_iam_member" "datasets_writer" {
  for_each = { for g, cfg in local.groups : g => cfg if cfg.models == "datasets" }

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.group[each.key].member

  condition {
    title       = "datasets-prefix-only"
    description = "Objects under datasets/ (the nightly Parquet exports) and nothing else."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.artifacts.name}/objects/datasets/\")"
  }
}

# --- Vertex AI: Gemini and embeddings (tutor), custom jobs (retrain) ---------------------

resource "google_project_iam_member" "vertex_user" {
  for_each = { for g, cfg in local.groups : g => cfg if cfg.llm || cfg.train }

  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = google_service_account.group[each.key].member
}

# The retrain function submits jobs that run as the trainer account.
resource "google_service_account_iam_member" "retrain_acts_as_trainer" {
  service_account_id = google_service_account.group["trainer"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.group["retrain"].member
}

# --- Pub/Sub -------------------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "retrain_publisher" {
  for_each = { for g, cfg in local.groups : g => cfg if cfg.publish }

  project = var.project_id
  topic   = google_pubsub_topic.retrain_requests.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.group[each.key].member
}

# The retrain trigger's subscription is created by Eventarc and pushes to the function
# as the retrain account, which must be allowed to receive events and to invoke it.
resource "google_project_iam_member" "retrain_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.group["retrain"].member
}

resource "google_project_iam_member" "nightly_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.group["nightly"].member
}

resource "google_cloud_run_service_iam_member" "nightly_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.event["nightly"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.group["nightly"].member
}

resource "google_cloud_run_service_iam_member" "retrain_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.event["retrain"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.group["retrain"].member
}

# Pub/Sub's own service agent forwards undeliverable messages to the dead-letter topic
# (it also needs subscriber on the source subscription: scripts/attach_dead_letter.sh).
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.retrain_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.pubsub_agent}"
}

# --- Secret Manager: each LLM key, to the groups that call LLMs only ---------------------

resource "google_secret_manager_secret_iam_member" "llm_accessor" {
  for_each = {
    for pair in setproduct([for g, cfg in local.groups : g if cfg.llm], var.llm_secret_names) :
    "${pair[0]}/${pair[1]}" => { group = pair[0], secret = pair[1] }
  }

  project   = var.project_id
  secret_id = google_secret_manager_secret.llm[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.group[each.value.group].member
}

# --- HTTP functions are called by the browser through Firebase Hosting ----------------------

resource "google_cloud_run_service_iam_member" "http_public" {
  # checkov:skip=CKV_GCP_102:accepted: Hosting rewrites carry no Google identity, so the HTTP functions are invocable by allUsers and verify Firebase ID tokens themselves; public_http_functions = false turns it off
  for_each = var.public_http_functions ? local.http_functions : {}

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.http[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- who may run migrations / connect as a person -------------------------------------------

resource "google_project_iam_member" "migrator_sql" {
  for_each = var.migrator_service_account == null ? toset([]) : toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${var.migrator_service_account}"
}

resource "google_project_iam_member" "human_sql" {
  for_each = {
    for pair in setproduct(var.db_iam_users, ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]}/${pair[1]}" => { user = pair[0], role = pair[1] }
  }

  project = var.project_id
  role    = each.value.role
  member  = "user:${each.value.user}"
}

# --- Secret Manager: the dataset pseudonymisation key, to the nightly export only ----------

resource "google_secret_manager_secret_iam_member" "dataset_key_accessor" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.dataset_pseudonym_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.group["nightly"].member
}
