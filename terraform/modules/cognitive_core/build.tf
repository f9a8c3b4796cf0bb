# The identities and network Cloud Build needs for this environment:
#   - the account that builds the function images (newer projects otherwise build as the
#     Compute Engine default account, which may lack logging and Artifact Registry rights);
#   - with a private-IP database, a private worker pool in the database's VPC, so the
#     migrate build (cloudbuild.migrate.yaml) can reach it: the default pool cannot.

resource "google_service_account" "build" {
  count = var.build_service_account == null ? 1 : 0

  project      = var.project_id
  account_id   = "${local.prefix}-build"
  display_name = "cognitive-core ${var.environment}: function builds"
  description  = "Cloud Build identity that turns each function's source zip into its image."

  depends_on = [google_project_service.api]
}

# Project-level by nature: build logs and the gcf-artifacts repository Cloud Functions
# creates itself (no narrower resource exists before the first build).
resource "google_project_iam_member" "build" {
  for_each = var.build_service_account == null ? toset(["roles/logging.logWriter", "roles/artifactregistry.writer"]) : toset([])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build[0].member
}

resource "google_storage_bucket_iam_member" "build_sources" {
  count = var.build_service_account == null ? 1 : 0

  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build[0].member
}

# Whoever deploys (the deployer) must be allowed to hand builds to this account.
resource "google_service_account_iam_member" "deployer_uses_build" {
  count = var.build_service_account == null && var.migrator_service_account != null ? 1 : 0

  service_account_id = google_service_account.build[0].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.migrator_service_account}"
}

resource "google_cloudbuild_worker_pool" "private" {
  # checkov:skip=CKV_GCP_86:the migrate build installs requirements from PyPI, which needs egress; without Cloud NAT an external IP is the only way out. The pool exists to reach the private database, not to isolate the build
  count = local.private_sql ? 1 : 0

  project  = var.project_id
  name     = "${local.prefix}-pool"
  location = var.region

  worker_config {
    machine_type   = "e2-standard-2"
    disk_size_gb   = 100
    no_external_ip = false # pip needs the package index
  }

  network_config {
    # Peered through the same private services access connection as Cloud SQL (sql.tf);
    # the pool takes a /24 of its reserved range.
    peered_network = var.sql_private_network
  }

  depends_on = [google_service_networking_connection.private_sql]
}
