"""Server-Sent Events: the wire format of streamed replies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
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


def sse_response(events: Iterable[tuple[str, Any]], request_id: str) -> flask.Response:
    """Stream (event, data) pairs. A failure after the first byte cannot change the
    status code any more, so it becomes a final `error` event in the usual shape."""

    def generate() -> Iterator[str]:
        token = request_id_var.set(request_id)  # the body streams after the router returned
        try:
            for event, data in events:
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
            request_id_var.reset(token)

    response = flask.Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
