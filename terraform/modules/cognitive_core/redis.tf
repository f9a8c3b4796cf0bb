# The shared embedding cache (shared/embeddings/shared_cache.py): Memorystore for Redis,
# off unless redis_enabled. Reached only from the VPC (private services access), with
# AUTH on and in-transit encryption (TLS, server authentication); the functions get there
# through the Serverless VPC Access connector in sql.tf.
#
# What the functions receive:
#   REDIS_URL      rediss://:<AUTH string>@<ip>:<port>/0, mounted from Secret Manager
#                  (the tutor group only: chat and grading embed text);
#   REDIS_CA_CERT  the instance's server CA(s), PEM, a plain variable (public data).
#
# The AUTH string is in the Terraform state whatever this module does: the provider
# reads it into google_redis_instance.cache.auth_string. Writing the URL to Secret
# Manager from here therefore adds no exposure (the state bucket is the deployer's
# only, terraform/bootstrap), and a rotated AUTH string reaches the functions at the
# next apply, because they mount the exact secret version written.

resource "google_redis_instance" "cache" {
  count = var.redis_enabled ? 1 : 0

  project        = var.project_id
  region         = var.region
  name           = "${local.prefix}-cache"
  display_name   = "cognitive-core ${var.environment} embedding cache"
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  redis_version  = var.redis_version
  labels         = local.labels

  authorized_network      = local.vpc_network
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # A cache: losing it costs model calls, never answers, so no persistence is kept, and
  # every key may be evicted when memory is full (all of them are cache entries).
  redis_configs = {
    maxmemory-policy = "allkeys-lru"
  }

  lifecycle {
    precondition {
      condition     = local.vpc_network != null
      error_message = "redis_enabled needs a VPC: set redis_network (or sql_private_network, which it defaults to)."
    }
    precondition {
      condition     = var.redis_network == null || var.sql_private_network == null || var.redis_network == var.sql_private_network
      error_message = "redis_network must be sql_private_network's VPC: the functions reach both through one connector."
    }
  }

  depends_on = [google_project_service.api, google_service_networking_connection.private_sql]
}

resource "google_secret_manager_secret" "redis_url" {
  count = var.redis_enabled ? 1 : 0

  project   = var.project_id
  secret_id = "${local.prefix}-redis-url"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "redis_url" {
  count = var.redis_enabled ? 1 : 0

  secret      = google_secret_manager_secret.redis_url[0].id
  secret_data = "rediss://:${google_redis_instance.cache[0].auth_string}@${google_redis_instance.cache[0].host}:${google_redis_instance.cache[0].port}/0"
}

resource "google_secret_manager_secret_iam_member" "redis_url_accessor" {
  for_each = var.redis_enabled ? { for g, cfg in local.groups : g => cfg if cfg.cache } : {}

  project   = var.project_id
  secret_id = google_secret_manager_secret.redis_url[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.group[each.key].member
}
