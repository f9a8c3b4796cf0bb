# The APIs the environment uses. Never disabled on destroy: other things in the
# project may depend on them, and re-enabling is slow.

locals {
  apis = concat([
    "aiplatform.googleapis.com",       # Gemini, embeddings, custom training jobs
    "artifactregistry.googleapis.com", # function images built by Cloud Build
    "cloudbuild.googleapis.com",       # builds the function sources
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com", # the retrain trigger
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "identitytoolkit.googleapis.com", # Firebase Auth
    "logging.googleapis.com",
    "monitoring.googleapis.com", # dashboard and alert policies
    "pubsub.googleapis.com",
    "run.googleapis.com", # 2nd gen functions run on Cloud Run
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com", # the Cloud SQL connector
    "storage.googleapis.com",
    ], local.use_vpc ? [
    "compute.googleapis.com",
    "servicenetworking.googleapis.com",
    "vpcaccess.googleapis.com",
  ] : [], var.redis_enabled ? ["redis.googleapis.com"] : [])
}

resource "google_project_service" "api" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

data "google_project" "this" {
  project_id = var.project_id
}
