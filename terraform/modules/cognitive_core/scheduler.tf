# The nightly learning loop: a retrain request on the topic, like any other trigger.

resource "google_cloud_scheduler_job" "nightly_retrain" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-nightly-retrain"
  description = "Nightly retrain request for cognitive-core ${var.environment}."
  schedule    = var.retrain_schedule
  time_zone   = var.retrain_schedule_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.retrain_requests.id
    # The shape shared/learning/runs.py parses; Pub/Sub's message id makes it idempotent.
    data = base64encode(jsonencode({ trigger = "schedule", params = {} }))
    attributes = {
      trigger = "schedule"
    }
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.api]
}
