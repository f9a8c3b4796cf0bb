"""Monitoring in Terraform reads the stable log fields of shared/logs.py: every
log-based metric filters on an event that exists and extracts fields that event has,
every alert the issue lists exists with a PromQL condition naming a metric that
exists, and the dashboard shows the seeds' four signals."""

from __future__ import annotations

import re

import pytest

import tests.deploy.terraform_hcl as tt
from shared.logs import STABLE_EVENT_FIELDS


def monitoring_locals() -> dict:
    return tt.module_locals()


def test_log_metrics_use_only_stable_event_fields():
    metrics = monitoring_locals()["log_metrics"]
    assert {"llm_calls", "llm_latency_ms", "llm_cost_usd", "embedding_cache_hits", "retrain_runs"} <= set(metrics)
    for name, spec in metrics.items():
        event = tt.unquote(spec["event"])
        assert event in STABLE_EVENT_FIELDS, f"{name}: no such event {event}"
        fields = STABLE_EVENT_FIELDS[event]
        value = tt.unquote(spec["value_field"]) if spec["value_field"] is not None else None
        assert value is None or value in fields, f"{name}: {event} has no field {value}"
        for label in spec["labels"]:
            assert tt.unquote(label) in fields, f"{name}: {event} has no field {label}"
    res = tt.resources(tt.MODULE)["google_logging_metric.event"]
    assert "jsonPayload.event" in res["filter"] and "local.log_scope" in res["filter"]
    assert "EXTRACT(jsonPayload." in res["value_extractor"]


def test_every_alert_the_issue_asks_for_exists():
    loc = monitoring_locals()
    expected = {
        "provider_failure_ratio",
        "chat_p95_latency",
        "cache_hit_rate",
        "daily_llm_cost",
        "http_5xx_ratio",
        "retrain_bad_runs",
    }
    assert set(loc["alerts"]) == expected == set(loc["promql"])
    metric_names = set(loc["log_metrics"])
    for key, query in loc["promql"].items():
        used = re.findall(r"user_\$\{local\.metric_prefix\}_([a-z_]+?)(?:_sum|_bucket)?[{\[]", query)
        assert set(used) <= metric_names, f"{key}: unknown metrics {set(used) - metric_names}"
        assert used or "run_googleapis_com:" in query, key
    assert "var.llm_daily_budget_usd" in loc["promql"]["daily_llm_cost"]
    assert "5xx" in loc["promql"]["http_5xx_ratio"]
    assert "failed|rejected" in loc["promql"]["retrain_bad_runs"]
    thresholds = tt.blocks(tt.MODULE, "variable")["alert_thresholds"]["type"]
    assert "optional(number, 5000)" in thresholds and "optional(number, 0.7)" in thresholds
    policy = tt.resources(tt.MODULE)["google_monitoring_alert_policy.alert"]
    assert policy["notification_channels"] == "${var.alert_notification_channels}"
    assert "condition_prometheus_query_language" in policy["conditions"][0]
    for alert in loc["alerts"].values():
        assert len(tt.unquote(alert["doc"])) > 80, "every alert says what to do"


@pytest.mark.parametrize("env", tt.ENVIRONMENTS)
def test_environments_set_the_budget_and_channels(env):
    module = tt.blocks(tt.TF / "environments" / env, "module")["cognitive_core"]
    assert module["llm_daily_budget_usd"] == "${var.llm_daily_budget_usd}"
    assert module["alert_notification_channels"] == "${var.alert_notification_channels}"


def test_dashboard_shows_latency_success_cost_and_cache():
    dashboard = str(tt.resources(tt.MODULE)["google_monitoring_dashboard.main"]["dashboard_json"])
    for title in ("latency per provider", "success rate per provider", "cost", "cache hit rate", "Retrain runs"):
        assert title in dashboard, title


def test_monitoring_fields_are_documented():
    doc = (tt.REPO / "docs" / "deploy.md").read_text()
    for event, fields in STABLE_EVENT_FIELDS.items():
        assert f"`{event}`" in doc, event
        for field in fields:
            assert f"`{field}`" in doc, f"{event}.{field} is not documented"


def _events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_the_code_emits_the_events_the_metrics_count(caplog, tmp_path):
    """Every log-based metric reads an event the code really emits: an LLM call (ok and
    error), an embedding batch, a finished training run."""
    import logging

    import numpy as np

    from shared.embeddings.service import EmbeddingService
    from shared.llm.errors import ProviderError
    from shared.llm.providers.offline import OfflineProvider
    from shared.llm.router import LLMRouter
    from shared.llm.types import Message, Prompt

    class Down:
        name = "down"

        def generate(self, model, prompt, timeout_s):
            raise ProviderError("down", "HTTP 503", transient=True, status=503)

    caplog.set_level(logging.INFO)
    router = LLMRouter({"down": Down(), "offline": OfflineProvider()}, ["down", "offline"], max_attempts=1)
    router.generate("chat", Prompt(system="s", messages=(Message("user", "what is a loop?"),)))
    calls = _events(caplog, "llm_call")
    assert [(c.provider, c.outcome) for c in calls] == [("down", "error"), ("offline", "ok")]
    assert all(isinstance(c.latency_ms, float) for c in calls)

    class Backend:
        model_name = "m@v1"

        def embed(self, texts):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    service = EmbeddingService(Backend())
    service.embed(["a", "b"])
    service.embed(["a"])
    batches = _events(caplog, "embedding_cache")
    assert [(b.hits, b.misses, b.cache_hit) for b in batches] == [(0, 2, False), (1, 0, True)]
