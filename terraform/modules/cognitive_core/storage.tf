# The artifacts bucket (models/, datasets/, training/) and the function source bucket.

resource "google_storage_bucket" "artifacts" {
  # checkov:skip=CKV_GCP_62:access is recorded by Cloud Audit Logs (Data Access logs for storage can be enabled project-wide); a second logs bucket adds cost and nothing the functions need
  project                     = var.project_id
  name                        = local.artifacts_bucket
  location                    = local.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  # Versioning keeps every overwritten models/current.json: a bad pointer move can be
  # undone even without `model_export promote`.
  versioning {
    enabled = true
  }

  # Nightly Parquet exports are partitioned by date; old partitions expire.
  lifecycle_rule {
    condition {
      age            = var.dataset_retention_days
      matches_prefix = ["datasets/"]
    }
    action {
      type = "Delete"
    }
  }

  # Training job staging files are scratch.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["training/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.artifacts_bucket) <= 63
      error_message = "The artifacts bucket name ${local.artifacts_bucket} is longer than 63 characters: shorten name_prefix or set artifacts_bucket_name."
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62:build inputs only; Cloud Audit Logs record access
  # checkov:skip=CKV_GCP_78:objects are content-addressed (named by sha256) and never overwritten, so versioning would keep nothing new
  project                     = var.project_id
  name                        = local.sources_bucket
  location                    = local.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  # Sources are content-addressed; once a function is built from one it is only
  # needed again for a rebuild, which re-uploads it.
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.sources_bucket) <= 63
      error_message = "The sources bucket name ${local.sources_bucket} is longer than 63 characters."
    }
  }

  depends_on = [google_project_service.api]
}

# dist/<name>.zip from `make build`, stored under its sha256: the function resource
# changes (and redeploys) exactly when the zip does, and the zips are deterministic.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  bucket = google_storage_bucket.sources.name
  name   = "functions/${each.key}/${filesha256("${var.function_source_dir}/${each.key}.zip")}.zip"
  source = "${var.function_source_dir}/${each.key}.zip"
}
