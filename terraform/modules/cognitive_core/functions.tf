# Cloud Functions (2nd gen): the HTTP functions behind Firebase Hosting and the
# retrain function on the retrain-requests topic. Each runs as its group's account,
# from the zip `make build` wrote, with the environment shared/config.py reads.

resource "google_cloudfunctions2_function" "http" {
  # checkov:skip=CKV_GCP_124:accepted: Firebase Hosting rewrites and the web client's streaming call reach the public URL; every request is authenticated by its Firebase ID token (docs/security.md)
  for_each = local.http_functions

  project     = var.project_id
  location    = var.region
  name        = "${local.prefix}-${each.key}"
  description = "cognitive-core ${each.key} (HTTP, /api/${each.key}/**)"
  labels      = local.labels

  build_config {
    runtime         = var.python_runtime
    entry_point     = each.key
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = local.sizing[each.key].memory
    available_cpu                    = local.sizing[each.key].cpu
    min_instance_count               = local.sizing[each.key].min_instances
    max_instance_count               = local.sizing[each.key].max_instances
    max_instance_request_concurrency = local.sizing[each.key].concurrency
    timeout_seconds                  = local.sizing[each.key].timeout_seconds
    service_account_email            = google_service_account.group[each.value.group].email
    ingress_settings                 = "ALLOW_ALL" # Firebase Hosting calls the public URL
    all_traffic_on_latest_revision   = true
    environment_variables            = local.function_env[each.key]
    vpc_connector                    = local.use_vpc ? google_vpc_access_connector.functions[0].id : null
    vpc_connector_egress_settings    = local.use_vpc ? "PRIVATE_RANGES_ONLY" : null

    dynamic "secret_environment_variables" {
      for_each = local.groups[each.value.group].llm ? local.mounted_secrets : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }

    # The shared embedding cache's URL (with its AUTH string), pinned to the version
    # Terraform wrote, so a new AUTH string redeploys the functions (redis.tf).
    dynamic "secret_environment_variables" {
      for_each = var.redis_enabled && local.groups[each.value.group].cache ? { REDIS_URL = google_secret_manager_secret_version.redis_url[0].version } : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.redis_url[0].secret_id
        version    = secret_environment_variables.value
      }
    }
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.sql_client,
    google_project_iam_member.sql_instance_user,
    google_secret_manager_secret_iam_member.llm_accessor,
    google_secret_manager_secret_iam_member.redis_url_accessor,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_sources,
  ]
}

resource "google_cloudfunctions2_function" "event" {
  for_each = local.event_functions

  project     = var.project_id
  location    = var.region
  name        = "${local.prefix}-${each.key}"
  description = "cognitive-core ${each.key} (Pub/Sub ${local.event_topics[each.key]})"
  labels      = local.labels

  build_config {
    runtime         = var.python_runtime
    entry_point     = each.key
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = local.sizing[each.key].memory
    available_cpu                    = local.sizing[each.key].cpu
    min_instance_count               = local.sizing[each.key].min_instances
    max_instance_count               = local.sizing[each.key].max_instances
    max_instance_request_concurrency = local.sizing[each.key].concurrency
    timeout_seconds                  = local.sizing[each.key].timeout_seconds
    service_account_email            = google_service_account.group[each.value.group].email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY" # only Eventarc pushes to it
    all_traffic_on_latest_revision   = true
    environment_variables            = local.function_env[each.key]
    vpc_connector                    = local.use_vpc ? google_vpc_access_connector.functions[0].id : null
    vpc_connector_egress_settings    = local.use_vpc ? "PRIVATE_RANGES_ONLY" : null

    # The dataset export's pseudonymisation key, once it has a version (see secrets.tf).
    dynamic "secret_environment_variables" {
      for_each = each.key == "nightly" && var.mount_dataset_pseudonym_key ? { DATASET_PSEUDONYM_KEY = google_secret_manager_secret.dataset_pseudonym_key.secret_id } : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = local.event_topics[each.key]
    service_account_email = google_service_account.group[each.value.group].email
    # Handling is idempotent (retrain: the message id is the run's key; nightly: every
    # step is idempotent per date) and malformed messages are acknowledged by the
    # function, so every raised error is worth a retry.
    retry_policy = "RETRY_POLICY_RETRY"
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.sql_client,
    google_project_iam_member.sql_instance_user,
    google_project_iam_member.retrain_event_receiver,
    google_project_iam_member.nightly_event_receiver,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_sources,
  ]
}
