"""Server-Sent Events: the wire format of streamed replies.

A stream ends after the router has returned, so whoever must know how it ended (the
idempotency keys: shared/http/idempotency.py) registers a `StreamOutcome` around the
handler call (`watch_stream`); the stream reports its `final` event's data, or None
when it ended without one (an `error` event, or the client went away).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import flask
from pydantic_core import to_jsonable_python

from shared.errors import DomainError
from shared.http.errors import from_domain
from shared.logs import request_id_var

log = logging.getLogger(__name__)


def encode_event(event: str, data: Any) -> str:
    payload = json.dumps(to_jsonable_python(data), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n"


class StreamOutcome:
    """Told once how a stream built inside `watch_stream` ended."""

    def __init__(self, done: Callable[[Any | None], None]) -> None:
        self.done = done
        self.attached = False  # True once a stream took it (else the handler did not stream)


_outcome: ContextVar[StreamOutcome | None] = ContextVar("sse_outcome", default=None)


@contextlib.contextmanager
def watch_stream(done: Callable[[Any | None], None]) -> Iterator[StreamOutcome]:
    """A stream created in this block calls `done(final data or None)` when it ends."""
    outcome = StreamOutcome(done)
    token = _outcome.set(outcome)
    try:
        yield outcome
    finally:
        _outcome.reset(token)


def sse_response(events: Iterable[tuple[str, Any]], request_id: str) -> flask.Response:
    """Stream (event, data) pairs. A failure after the first byte cannot change the
    status code any more, so it becomes a final `error` event in the usual shape."""
    outcome = _outcome.get()
    if outcome is not None:
        outcome.attached = True

    def generate() -> Iterator[str]:
        token = request_id_var.set(request_id)  # the body streams after the router returned
        final: Any | None = None
        try:
            for event, data in events:
                if event == "final":
                    final = data
                yield encode_event(event, data)
        except DomainError as exc:  # a refusal the domain names (no model could answer, ...)
            log.warning("stream ended by %s: %s", exc.code, exc)
            yield encode_event("error", from_domain(exc).body(request_id))
        except Exception:
            log.exception("stream failed")
            yield encode_event(
                "error",
                {
                    "error": {
                        "code": "internal",
                        "message": "The reply could not be completed.",
                        "request_id": request_id,
                    }
                },
            )
        finally:
            if outcome is not None:
                try:
                    outcome.done(final)
                except Exception:
                    log.exception("stream outcome not recorded")
            request_id_var.reset(token)

    response = flask.Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
