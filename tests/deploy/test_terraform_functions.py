"""Terraform deploys every function with its trigger, its sizing and the environment
shared/config.py reads (a typo would silently leave a local default in the cloud).
"""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.terraform_hcl import (
    MODULE,
    NON_SETTINGS_ENV,
    REPO,
    blocks,
    function_decorators,
    module_locals,
    resources,
    settings_aliases,
    unquote,
)


def test_every_function_is_deployed_with_its_trigger_kind():
    declared = {name: {k: unquote(v) for k, v in spec.items()} for name, spec in module_locals()["functions"].items()}
    assert {n: spec["kind"] for n, spec in declared.items()} == function_decorators()
    groups = module_locals()["groups"]
    assert {spec["group"] for spec in declared.values()} <= set(groups)

    res = resources(MODULE)
    http, event = res["google_cloudfunctions2_function.http"], res["google_cloudfunctions2_function.event"]
    assert http["for_each"] == "${local.http_functions}" and event["for_each"] == "${local.event_functions}"
    for fn in (http, event):
        assert fn["build_config"][0]["entry_point"] == "${each.key}"
        assert fn["service_config"][0]["environment_variables"] == "${local.function_env[each.key]}"
        assert "source[each.key]" in fn["build_config"][0]["source"][0]["storage_source"][0]["object"]
    trigger = event["event_trigger"][0]
    assert unquote(trigger["event_type"]) == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsub_topic"] == "${local.event_topics[each.key]}"
    topics = module_locals()["event_topics"]
    assert set(topics) == {n for n, spec in declared.items() if spec["kind"] == "event"}
    assert topics["retrain"] == "${google_pubsub_topic.retrain_requests.id}"
    assert topics["nightly"] == "${google_pubsub_topic.learning_nightly.id}"
    assert unquote(trigger["retry_policy"]) == "RETRY_POLICY_RETRY"


def test_function_sizing_defaults_match_the_design():
    defaults = blocks(MODULE, "variable")["function_defaults"]["type"]
    # python-hcl2 renders the object type as one expression string.
    assert 'optional(string, "1Gi")' in defaults  # memory
    for field in ("min_instances", "max_instances", "concurrency", "timeout_seconds"):
        assert field in defaults
    sizing = module_locals()["sizing"]
    for field in ("var.function_overrides", "local.builtin_sizing", "var.function_defaults"):
        assert field in sizing


def test_function_environment_is_what_shared_config_reads():
    loc = module_locals()
    env: dict[str, Any] = {}
    assert loc["common_env"] == "${merge(var.extra_env, local.cloud_env, local.budget_env)}"  # ours win
    for name in ("LLM_DAILY_BUDGET_USD", "LLM_USER_DAILY_BUDGET_USD"):  # the router enforces the alert's figure
        assert re.search(rf"\b{name}\b", str(loc["budget_env"]))
        env[name] = "${var.budget}"  # an expression: not a literal the settings test reads
    assert "var.llm_daily_budget_usd" in str(loc["budget_env"])
    for part in ("cloud_env", "training_env"):
        env.update({k: unquote(v) for k, v in loc[part].items() if not k.startswith("__")})
    per_function = loc["function_env"]
    for name in ("DB_USER", "ONNX_THREADS"):
        assert re.search(rf"\b{name}\b", per_function)
        env[name] = "<per function>"

    required = {
        "COGNITIVE_ENV",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_REGION",
        "CLOUD_SQL_INSTANCE",
        "DB_USER",
        "DB_NAME",
        "DB_IAM_AUTH",
        "FIREBASE_AUTH_EMULATOR_HOST",
        "CORS_ORIGINS",
        "MODEL_STORE_URI",
        "STATE_DIR",
        "RETRAIN_TOPIC",
    }
    assert required <= set(env), f"missing: {sorted(required - set(env))}"
    unknown = set(env) - settings_aliases() - NON_SETTINGS_ENV
    assert not unknown, f"set in Terraform but read by nothing in shared/config.py: {sorted(unknown)}"
    onnx_model = (REPO / "shared/models/onnx_model.py").read_text()
    assert re.search(r'THREADS_ENV = "ONNX_THREADS"', onnx_model)

    # The literal values, read by the real settings class: cloud mode, IAM database
    # auth, and real Firebase token verification (an empty emulator host, explicit even
    # though unset means the same since emulator mode became an opt-in).
    assert env["FIREBASE_AUTH_EMULATOR_HOST"] == ""
    assert env["MODEL_STORE_URI"] == "${local.model_store_uri}"
    assert unquote(loc["model_store_uri"]) == "gs://${local.artifacts_bucket}/models"
    from shared.config import Settings

    literal = {k: v for k, v in env.items() if isinstance(v, str) and "${" not in v and k in settings_aliases()}
    settings = Settings.model_validate({**literal, "COGNITIVE_ENV_FILE": "/nonexistent"})
    assert settings.environment == "cloud"
    assert settings.db_iam_auth is True
    assert settings.auth_emulator_host is None
