"""The instance's own counters, for local use and debugging: `GET /api/admin/counters`.

Counted from the log records this process emits (a logging handler, so no call site
changes): requests and errors per function from the router's access log, LLM failures
per provider from the router's "LLM call failed" line, and every stable event of
shared/logs.py (`llm_call`, `embedding_cache`, `chat_turn`, `retrain_run`). Read live
from the singletons that already exist (never created here): LLM breaker states, the
embedding cache's hit rate and the model version in service.

Counters are per process and reset on restart: in the cloud the same numbers come from
the log-based metrics (terraform/modules/cognitive_core/monitoring.tf).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from pydantic import Field

from shared.api.models import ResponseBody
from shared.http import Request, Router

router = Router("counters")


class CounterHandler(logging.Handler):
    """Counts what the log says happened."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._lock = threading.Lock()
        self.started = time.time()
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        keys: list[str] = []
        http = getattr(record, "httpRequest", None)
        if isinstance(http, dict) and "status" in http:
            function = getattr(record, "function", "unknown")
            status = int(http["status"])
            keys += ["requests", f"requests.{function}", f"status.{status // 100}xx"]
            if status >= 500:
                keys += ["errors", f"errors.{function}"]
        event = getattr(record, "event", None)
        if isinstance(event, str):
            keys.append(f"event.{event}")
            outcome = getattr(record, "outcome", None)
            if outcome is not None:
                keys.append(f"event.{event}.{outcome}")
            if event == "embedding_cache":
                keys += ["cache.hits"] * int(getattr(record, "hits", 0) or 0)
                keys += ["cache.misses"] * int(getattr(record, "misses", 0) or 0)
        elif record.getMessage() == "LLM call failed":
            keys.append(f"llm.failures.{getattr(record, 'provider', 'unknown')}")
        if keys:
            with self._lock:
                self.counts.update(keys)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))


_handler: CounterHandler | None = None
_install_lock = threading.Lock()


def install() -> CounterHandler:
    """Attach the counting handler to the root logger (idempotent)."""
    global _handler
    with _install_lock:
        if _handler is None:
            _handler = CounterHandler()
            logging.getLogger().addHandler(_handler)
        return _handler


def _breakers() -> dict[str, Any] | None:
    from shared.llm import router as llm_router

    if not llm_router.router_built():
        return None  # no LLM call yet in this process: nothing to report, nothing built
    providers = llm_router.get_router().describe()["providers"]
    return {name: info.get("breaker") for name, info in providers.items()}


def _embedding_cache() -> dict[str, Any] | None:
    from shared.embeddings import service

    return service._service.cache.stats() if service._service is not None else None


def _model_version() -> str | None:
    from shared.models import registry

    current = getattr(registry._registry, "_current", None)
    return getattr(current, "version", None)


def snapshot() -> dict[str, Any]:
    handler = install()
    parts: dict[str, Any] = {}
    readers = {"breakers": _breakers, "embedding_cache": _embedding_cache, "model_version": _model_version}
    for name, read in readers.items():
        try:
            parts[name] = read()
        except Exception as exc:  # noqa: BLE001 - a debugging view reports, it does not fail
            parts[name] = {"unavailable": type(exc).__name__}
    return {"uptime_s": round(time.time() - handler.started, 1), "counters": handler.snapshot(), **parts}


class Counters(ResponseBody):
    """The process's counters; a part that could not be read says `{"unavailable": <error>}`."""

    uptime_s: float
    counters: dict[str, int] = Field(description="requests, statuses, errors, events, cache hits, LLM failures")
    breakers: dict[str, Any] | None = Field(description="LLM breaker per provider (null: no LLM call yet)")
    embedding_cache: dict[str, Any] | None = Field(description="the in-process cache's counters (null: not built)")
    model_version: str | dict[str, str] | None = Field(description="the model version in service")


@router.get("/", admin=True, response=Counters)
def _counters(req: Request) -> dict[str, Any]:
    return snapshot()
