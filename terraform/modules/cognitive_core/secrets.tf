# LLM provider keys: the secrets are created empty. Values are added out of band
# (`gcloud secrets versions add`), so no key ever passes through Terraform or its state.

resource "google_secret_manager_secret" "llm" {
  for_each = toset(var.llm_secret_names)

  project   = var.project_id
  secret_id = "${local.prefix}-${lower(replace(each.value, "_", "-"))}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

# The HMAC key that pseudonymises user ids in the nightly dataset exports
# (DATASET_PSEUDONYM_KEY, shared/learning/datasets.py). Created empty like the LLM keys;
# add a version out of band (e.g. `openssl rand -base64 48 | gcloud secrets versions add
# <prefix>-dataset-pseudonym-key --data-file=-`), then set mount_dataset_pseudonym_key.
# Until then the nightly export refuses to run (the cloud never exports without the key).
# Never rotate it casually: pseudonyms change with it, and histories stop joining.
resource "google_secret_manager_secret" "dataset_pseudonym_key" {
  project   = var.project_id
  secret_id = "${local.prefix}-dataset-pseudonym-key"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}
