"""The admin counters route and the stable log-event contract of shared/logs.py."""

from __future__ import annotations

import logging

import pytest
from werkzeug.test import Client

from local.server import router_app
from shared.http import counters
from shared.logs import STABLE_EVENT_FIELDS, log_event


@pytest.fixture()
def app():
    counters.install()
    return Client(router_app(counters.router))


def test_counters_need_an_admin(app, bearer):
    assert app.get("/").status_code == 401
    assert app.get("/", headers=bearer("alice")).status_code == 403


def test_counters_count_requests_errors_events_and_llm_failures(app, bearer):
    log = logging.getLogger("tests.counters")
    log.setLevel(logging.INFO)  # the servers' configure_logging does this for the root
    before = app.get("/", headers=bearer("root", admin=True)).json["counters"]
    log.info("GET /x 200", extra={"function": "chat", "httpRequest": {"status": 200, "latency": "0.01s"}})
    log.error("GET /x 503", extra={"function": "chat", "httpRequest": {"status": 503, "latency": "0.02s"}})
    log.warning("LLM call failed", extra={"provider": "openai", "model": "m", "error": "x", "transient": True})
    log_event(log, "embedding_cache", route="chat", cache_hit=True, hits=3, misses=1, model="minilm")
    log_event(log, "retrain_run", run_id="1", outcome="rejected", reason="gate")
    body = app.get("/", headers=bearer("root", admin=True)).json
    after = body["counters"]

    def delta(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    assert delta("requests.chat") >= 2 and delta("errors.chat") >= 1 and delta("status.5xx") >= 1
    assert delta("llm.failures.openai") == 1
    assert delta("cache.hits") == 3 and delta("cache.misses") == 1
    assert delta("event.retrain_run.rejected") == 1
    assert {"uptime_s", "breakers", "embedding_cache", "model_version"} <= set(body)


def test_log_event_refuses_unknown_events_and_fields():
    log = logging.getLogger("tests.counters")
    with pytest.raises(ValueError):
        log_event(log, "made_up")
    with pytest.raises(ValueError):
        log_event(log, "llm_call", provder="typo")
    assert {"provider", "model", "latency_ms", "tokens_in", "tokens_out", "cost_usd"} <= STABLE_EVENT_FIELDS["llm_call"]


def test_log_event_writes_the_fields_as_top_level_json(capsys):
    import json

    from shared.logs import configure_logging

    configure_logging("INFO")
    log_event(logging.getLogger("tests.counters"), "llm_call", provider="vertex", outcome="ok", cost_usd=0.001)
    line = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"llm_call"' in x][-1]
    assert line["event"] == "llm_call" and line["provider"] == "vertex" and line["cost_usd"] == 0.001
