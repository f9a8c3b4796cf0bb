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
