# One-time bootstrap: the GCS bucket that holds the Terraform state of every
# environment. It has local state of its own (keep terraform.tfstate safe, or
# create the bucket with the gcloud commands in docs/deploy.md instead).

terraform {
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.49.3" # a root pins exactly (the module keeps a range); see docs/deploy.md: the lock file
    }
  }
}

variable "project_id" {
  description = "Project that owns the state bucket (usually the prod project, or a separate ops project)."
  type        = string
}

variable "location" {
  description = "Location of the state bucket."
  type        = string
  default     = "US"
}

variable "bucket_name" {
  description = "State bucket name; null means <project_id>-tfstate."
  type        = string
  default     = null
}

provider "google" {
  project = var.project_id
}

resource "google_storage_bucket" "tfstate" {
  # checkov:skip=CKV_GCP_62:state reads and writes are recorded by Cloud Audit Logs; versioning keeps every state
  name                        = coalesce(var.bucket_name, "${var.project_id}-tfstate")
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Every state write is kept: a broken apply can be rolled back to the previous state.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 50
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

# --- the deployer: the one identity that applies Terraform, migrates and loads content ----
# Cloud Build runs cloudbuild.yaml and cloudbuild.migrate.yaml as this account
# (`serviceAccount:` in both files); it is each environment's `migrator_service_account`,
# so the schema has exactly one owner. People never migrate as themselves: they submit
# the migrate build (scripts/cloud_migrate.sh) or, for a one-off, impersonate this account.

variable "deployer_account_id" {
  description = "Account id of the deployer service account Cloud Build runs as (apply, migrate, load content)."
  type        = string
  default     = "cc-deployer"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.deployer_account_id))
    error_message = "deployer_account_id must be 6-30 lowercase letters, digits or dashes."
  }
}

variable "deployer_impersonators" {
  description = "Members (e.g. \"user:you@example.com\") allowed to act as the deployer: submit builds that run as it, or mint its token for a one-off migration."
  type        = list(string)
  default     = []
}

locals {
  # What `terraform apply` of an environment, the migrations and the content load need.
  # Project-level because the environment creates these resources (no narrower scope
  # exists before they do). compute.networkAdmin and vpcaccess.admin only matter with a
  # private-IP database; cloudbuild.workerPoolOwner for its private pool.
  deployer_roles = toset([
    "roles/artifactregistry.admin",
    "roles/cloudbuild.builds.editor",
    "roles/cloudbuild.workerPoolOwner",
    "roles/cloudfunctions.admin",
    "roles/cloudscheduler.admin",
    "roles/cloudsql.admin",
    "roles/cloudsql.client",
    "roles/cloudsql.instanceUser",
    "roles/compute.networkAdmin",
    "roles/eventarc.admin",
    "roles/firebasehosting.admin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/logging.configWriter",
    "roles/logging.logWriter",
    "roles/monitoring.editor",
    "roles/pubsub.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/secretmanager.admin",
    "roles/serviceusage.serviceUsageAdmin",
    "roles/storage.admin",
    "roles/vpcaccess.admin",
  ])
}

resource "google_project_service" "bootstrap" {
  for_each = toset(["cloudbuild.googleapis.com", "firebasehosting.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com", "storage.googleapis.com"])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = var.deployer_account_id
  display_name = "cognitive-core deployer (Cloud Build)"
  description  = "Applies Terraform, runs the migrations (owner of the schema) and loads course content."

  depends_on = [google_project_service.bootstrap]
}

resource "google_project_iam_member" "deployer" {
  # checkov:skip=CKV_GCP_41:accepted: the deployer creates the runtime service accounts and deploys functions that run as them, which needs serviceAccountUser where they live (the project)
  # checkov:skip=CKV_GCP_49:accepted: same reason; the deployer is used only by Cloud Build and the people in deployer_impersonators
  for_each = local.deployer_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

resource "google_storage_bucket_iam_member" "deployer_state" {
  bucket = google_storage_bucket.tfstate.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}

resource "google_service_account_iam_member" "deployer_impersonation" {
  for_each = toset(flatten([for m in var.deployer_impersonators : ["${m}|roles/iam.serviceAccountUser", "${m}|roles/iam.serviceAccountTokenCreator"]]))

  service_account_id = google_service_account.deployer.name
  role               = split("|", each.value)[1]
  member             = split("|", each.value)[0]
}

output "deployer_service_account" {
  description = "Email of the deployer: the environments' migrator_service_account and the `serviceAccount` of the Cloud Build configs."
  value       = google_service_account.deployer.email
}

output "state_bucket" {
  description = "Put this in environments/<env>/backend.hcl as `bucket`."
  value       = google_storage_bucket.tfstate.name
}
