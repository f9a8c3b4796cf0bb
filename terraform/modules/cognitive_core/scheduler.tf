# The nightly learning loop: a daily tick on the learning-nightly topic. The nightly
# function exports yesterday's dataset version, records the night's retrain request in
# the outbox (one per date) and publishes every pending request to retrain-requests
# (shared/learning/nightly.py). Going through the outbox, the nightly request names the
# dataset version it was made for, and a retried tick records nothing twice.

resource "google_cloud_scheduler_job" "nightly_learning" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-nightly-learning"
  description = "Nightly dataset export and retrain request for cognitive-core ${var.environment}."
  schedule    = var.retrain_schedule
  time_zone   = var.retrain_schedule_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.learning_nightly.id
    data       = base64encode(jsonencode({ task = "nightly" }))
    attributes = {
      task = "nightly"
    }
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.api]
}
