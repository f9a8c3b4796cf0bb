"""Secrets stay secrets (Secret Manager, never plain environment or literals in the
configuration) and every identity has least privilege.
"""

from __future__ import annotations

import re

from tests.deploy.terraform_hcl import (
    ENVIRONMENTS,
    MODULE,
    REPO,
    TF,
    blocks,
    default_of,
    module_locals,
    resources,
    unquote,
)


def test_llm_keys_are_secrets_never_plain_environment():
    from pydantic import SecretStr

    from shared.config import Settings

    secret_fields = {
        f.validation_alias
        for f in Settings.model_fields.values()
        if SecretStr in getattr(f.annotation, "__args__", (f.annotation,))
    }
    secret_fields.discard("DB_PASSWORD")  # IAM database auth: no password in the cloud
    # The dataset pseudonymisation key is its own secret, mounted into the nightly function only.
    secret_fields.discard("DATASET_PSEUDONYM_KEY")
    # The cache URL carries Memorystore's AUTH string: its own secret (test_terraform_redis.py).
    secret_fields.discard("REDIS_URL")
    # A self-hosted OpenAI-compatible endpoint (docs/llm.md, "Local models") is a local or
    # laptop set-up; the cloud module deploys no such endpoint, so it has no secret for its key.
    secret_fields.discard("LOCAL_LLM_API_KEY")
    res = resources(MODULE)
    assert "google_secret_manager_secret.dataset_pseudonym_key" in res
    event = res["google_cloudfunctions2_function.event"]["service_config"][0]
    dataset_env = event["dynamic"][0]['"secret_environment_variables"']
    assert 'each.key == "nightly"' in dataset_env["for_each"] and "DATASET_PSEUDONYM_KEY" in dataset_env["for_each"]
    accessor = res["google_secret_manager_secret_iam_member.dataset_key_accessor"]
    assert accessor["member"] == '${google_service_account.group["nightly"].member}'
    secret_names = set(default_of(blocks(MODULE, "variable")["llm_secret_names"]))
    assert secret_fields <= secret_names, f"settings secrets without a secret: {secret_fields - secret_names}"

    env_text = str(module_locals()["cloud_env"]) + str(module_locals()["training_env"])
    for name in secret_names:
        assert name not in env_text
    fn = resources(MODULE)["google_cloudfunctions2_function.http"]["service_config"][0]
    secret_env = fn["dynamic"][0]['"secret_environment_variables"']
    assert "local.mounted_secrets" in secret_env["for_each"]
    assert "llm" in secret_env["for_each"]  # only groups that call an LLM get them


def test_no_secret_values_anywhere_in_terraform():
    all_res = {}
    for folder in (MODULE, TF / "bootstrap", *(TF / "environments" / e for e in ENVIRONMENTS)):
        all_res.update(resources(folder))
    # The one secret version Terraform writes is the cache URL, whose AUTH string the
    # provider already keeps in the state (google_redis_instance.auth_string, redis.tf).
    versions = {r: body for r, body in all_res.items() if r.startswith("google_secret_manager_secret_version.")}
    assert list(versions) == ["google_secret_manager_secret_version.redis_url"]
    redis_url = versions["google_secret_manager_secret_version.redis_url"]["secret_data"]
    assert "google_redis_instance.cache[0].auth_string" in redis_url
    for name, body in all_res.items():
        if name.startswith("google_sql_user."):
            assert "password" not in body and "password_wo" not in body, name
            assert unquote(body["type"]) in {"CLOUD_IAM_SERVICE_ACCOUNT", "CLOUD_IAM_USER"}, name

    leaks = re.compile(
        r"sk-[A-Za-z0-9_-]{20,}|sk-ant-[A-Za-z0-9_-]{10,}|AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY"
        r"|\"private_key\"|secret_data(?!\s*=\s*\"rediss://:\$\{google_redis_instance\.cache\[0\]\.auth_string\}@)|password\s*=\s*\"[^\"]+\""
    )
    files = [p for p in TF.rglob("*") if p.is_file() and ".terraform" not in p.parts]
    files.append(REPO / "cloudbuild.yaml")
    for path in files:
        hits = leaks.findall(path.read_text())
        assert not hits, f"{path.relative_to(REPO)} looks like it holds a secret: {hits}"


def test_iam_is_least_privilege():
    res = resources(MODULE)
    broad = {"roles/owner", "roles/editor", "roles/viewer", "roles/storage.admin", "roles/iam.serviceAccountAdmin"}
    project_roles = set()
    for name, body in res.items():
        role = unquote(body.get("role", ""))
        assert role not in broad, f"{name} grants {role}"
        if name.startswith("google_project_iam_member."):
            assert not role.startswith(("roles/storage.", "roles/secretmanager.", "roles/pubsub.")), (
                f"{name}: {role} must be granted on the bucket/secret/topic, not the project"
            )
            project_roles.add(role or body["role"])
    admin = res["google_storage_bucket_iam_member.artifacts_admin"]
    assert unquote(admin["role"]) == "roles/storage.objectAdmin"
    assert admin["bucket"] == "${google_storage_bucket.artifacts.name}"
    assert 'cfg.models == "write"' in admin["for_each"]
    writers = {g for g, cfg in module_locals()["groups"].items() if unquote(cfg["models"]) == "write"}
    assert writers == {"retrain", "trainer"}, "only the learning loop may publish models"
    for role in ("roles/cloudsql.client", "roles/cloudsql.instanceUser", "roles/aiplatform.user"):
        assert any(unquote(b.get("role", "")) == role for b in res.values()), role
    accessor = res["google_secret_manager_secret_iam_member.llm_accessor"]
    assert unquote(accessor["role"]) == "roles/secretmanager.secretAccessor"
    assert "cfg.llm" in accessor["for_each"]
