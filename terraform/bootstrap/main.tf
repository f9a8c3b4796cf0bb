# One-time bootstrap: the GCS bucket that holds the Terraform state of every
# environment. It has local state of its own (keep terraform.tfstate safe, or
# create the bucket with the gcloud commands in docs/deploy.md instead).

terraform {
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 8.0"
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

output "state_bucket" {
  description = "Put this in environments/<env>/backend.hcl as `bucket`."
  value       = google_storage_bucket.tfstate.name
}
