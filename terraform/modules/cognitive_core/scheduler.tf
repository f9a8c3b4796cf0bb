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

# A Vertex AI training job's outcome is recorded when the retrain function next handles
# a message (shared/learning/vertex_jobs.py: reconcile). This tick is such a message on a
# schedule: it records the jobs that ended and starts the runs they were blocking. It
# never creates a training run (trigger "reconcile").
resource "google_cloud_scheduler_job" "retrain_reconcile" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-retrain-reconcile"
  description = "Records ended Vertex AI training jobs of cognitive-core ${var.environment}."
  schedule    = var.retrain_reconcile_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.retrain_requests.id
    data       = base64encode(jsonencode({ trigger = "reconcile" }))
    attributes = {
      trigger = "reconcile"
    }
  }

  retry_config {
    retry_count = 1
  }

  depends_on = [google_project_service.api]
}
