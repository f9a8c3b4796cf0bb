# retrain-requests: published from the retrain outbox (shared/learning/outbox.py) by the
# serving functions when labels or completed tasks cross their thresholds, and by the
# nightly function; consumed by the retrain function. Undeliverable messages end on the
# dead-letter topic.
# learning-nightly: Cloud Scheduler's daily tick, consumed by the nightly function.

locals {
  pubsub_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "retrain_requests" {
  # checkov:skip=CKV_GCP_83:messages carry ids and triggers, no personal data; Google-managed encryption at rest is enough (no CMEK requirement)
  project                    = var.project_id
  name                       = "${local.prefix}-retrain-requests"
  message_retention_duration = "86400s"
  labels                     = local.labels

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "learning_nightly" {
  # checkov:skip=CKV_GCP_83:messages carry ids and triggers, no personal data; Google-managed encryption at rest is enough (no CMEK requirement)
  project                    = var.project_id
  name                       = "${local.prefix}-learning-nightly"
  message_retention_duration = "86400s"
  labels                     = local.labels

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "retrain_dead_letter" {
  # checkov:skip=CKV_GCP_83:messages carry ids and triggers, no personal data; Google-managed encryption at rest is enough (no CMEK requirement)
  project = var.project_id
  name    = "${local.prefix}-retrain-requests-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.api]
}

# Dead letters are kept here for a person to read (a topic alone would drop them).
resource "google_pubsub_subscription" "dead_letter_inbox" {
  project                    = var.project_id
  name                       = "${local.prefix}-retrain-requests-dead-letter-inbox"
  topic                      = google_pubsub_topic.retrain_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = "" # never expires
  }
}

# The retrain trigger's subscription is created by Eventarc, and the provider cannot set
# a dead-letter policy on it (hashicorp/terraform-provider-google#25069). This attaches
# one with gcloud, again whenever the trigger or the policy changes.
resource "terraform_data" "retrain_dead_letter_policy" {
  count = var.attach_dead_letter_with_gcloud ? 1 : 0

  triggers_replace = [
    google_cloudfunctions2_function.event["retrain"].event_trigger[0].trigger,
    google_pubsub_topic.retrain_dead_letter.id,
    var.retrain_max_delivery_attempts,
  ]

  provisioner "local-exec" {
    command = "${path.module}/scripts/attach_dead_letter.sh"
    environment = {
      PROJECT               = var.project_id
      TRIGGER               = google_cloudfunctions2_function.event["retrain"].event_trigger[0].trigger
      REGION                = var.region
      DEAD_LETTER_TOPIC     = google_pubsub_topic.retrain_dead_letter.id
      MAX_DELIVERY_ATTEMPTS = tostring(var.retrain_max_delivery_attempts)
      PUBSUB_AGENT          = local.pubsub_agent
    }
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}
