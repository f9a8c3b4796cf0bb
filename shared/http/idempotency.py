"""Idempotent writes: a request retried with the same `Idempotency-Key` header is
answered with the first result and counts once (the web client's offline mode resends).

A handler opts in with a decorator placed under the route declaration:

    @router.post("/", body=GradeRequest)
    @idempotent("grading")
    def grade(req): ...

Without the header nothing changes. With it (1-128 characters of `A-Za-z0-9._:-`):

- the first request claims the key (a committed 'pending' row in `idempotency_keys`,
  unique per user, scope and key), runs, and stores its status and JSON body;
- a duplicate arriving while the first still runs waits for it (up to WAIT_S), then
  gets the stored answer, with `Idempotent-Replayed: true`; past WAIT_S it gets 409
  `idempotency_in_progress` with Retry-After;
- a later duplicate gets the stored answer at once;
- the same key with a different body is 422 `idempotency_key_reused`;
- a first request that fails (any error) releases the key, so the retry runs again;
  a claim left 'pending' by a crashed instance is taken over after STALE_S.
Keys are per user: another user's key never matches. A streamed answer (SSE) keeps the
claim until the stream ends: its `final` event's data is stored as the answer (a
duplicate gets it as JSON, which the web client reads as the final event); a stream that
ends without one (an error event, or the client went away before the end) releases the
key, so the resend runs again. The web client sends one key per chat turn on every
resend (web/js/chat.js), so a reply whose response was lost is never generated twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import flask
import sqlalchemy as sa
from pydantic_core import to_jsonable_python

from shared.http.errors import ApiError
from shared.http.sse import watch_stream

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
WAIT_S = 10.0
POLL_S = 0.05
STALE_S = 120.0
RETENTION = "7 days"


def _engine() -> sa.Engine:
    from shared.db import get_engine

    return get_engine()


def _claim(engine: sa.Engine, user: str, scope: str, key: str, digest: str) -> dict[str, Any] | None:
    """None when this request now owns the key; else the existing row."""
    with engine.begin() as conn:
        claimed = conn.execute(
            sa.text(
                """INSERT INTO idempotency_keys (user_id, scope, key, request_hash)
                   VALUES (:u, :s, :k, :h) ON CONFLICT DO NOTHING RETURNING key"""
            ),
            {"u": user, "s": scope, "k": key, "h": digest},
        ).first()
        if claimed is not None:
            return None
        row = (
            conn.execute(
                sa.text(
                    """SELECT request_hash, state, status, response,
                          extract(epoch FROM now() - created_at) AS age
                     FROM idempotency_keys WHERE user_id = :u AND scope = :s AND key = :k"""
                ),
                {"u": user, "s": scope, "k": key},
            )
            .mappings()
            .first()
        )
        if row is None:
            return {"state": "gone"}
        if row["state"] == "pending" and row["age"] > STALE_S:
            # The first request's instance died: take the claim over.
            conn.execute(
                sa.text(
                    """UPDATE idempotency_keys SET created_at = now(), request_hash = :h
                        WHERE user_id = :u AND scope = :s AND key = :k AND state = 'pending'"""
                ),
                {"u": user, "s": scope, "k": key, "h": digest},
            )
            return None
        return dict(row)


def _release(engine: sa.Engine, user: str, scope: str, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM idempotency_keys WHERE user_id = :u AND scope = :s AND key = :k AND state = 'pending'"
            ),
            {"u": user, "s": scope, "k": key},
        )


def _store(engine: sa.Engine, user: str, scope: str, key: str, status: int, body: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """UPDATE idempotency_keys
                      SET state = 'done', status = :st, response = CAST(:r AS jsonb), completed_at = now()
                    WHERE user_id = :u AND scope = :s AND key = :k"""
            ),
            {"u": user, "s": scope, "k": key, "st": status, "r": json.dumps(to_jsonable_python(body))},
        )
        # Lazy retention: old keys go, a few at a time.
        conn.execute(
            sa.text(
                f"""DELETE FROM idempotency_keys WHERE ctid IN (
                       SELECT ctid FROM idempotency_keys
                        WHERE created_at < now() - interval '{RETENTION}' LIMIT 100)"""
            )
        )


def _replay(row: dict[str, Any], request_id: str) -> flask.Response:
    body = dict(row["response"] or {})
    body["request_id"] = request_id
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=row["status"], mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(scope: str) -> Callable:
    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(req: Any) -> Any:
            key = req.raw.headers.get(HEADER)
            if key is None:
                return handler(req)
            if not _KEY_RE.match(key):
                raise ApiError(400, "invalid_idempotency_key", f"{HEADER} must be 1-128 of A-Z a-z 0-9 . _ : -")
            user = req.user.uid
            digest = hashlib.sha256(req.raw.get_data(cache=True)).hexdigest()
            engine = _engine()
            deadline = time.monotonic() + WAIT_S
            while True:
                row = _claim(engine, user, scope, key, digest)
                if row is None:
                    break  # ours: run the handler
                if row["state"] == "gone" and time.monotonic() < deadline:
                    continue  # released between our insert and select: claim again
                if row["state"] == "gone" or (row["state"] == "pending" and time.monotonic() >= deadline):
                    raise ApiError(
                        409,
                        "idempotency_in_progress",
                        "The first request with this key is still running; retry shortly.",
                        headers={"Retry-After": "1"},
                    )
                if row["request_hash"] != digest:
                    raise ApiError(422, "idempotency_key_reused", f"This {HEADER} was used for a different request.")
                if row["state"] == "done":
                    return _replay(row, req.request_id)
                time.sleep(POLL_S)

            def stream_ended(final: Any | None) -> None:
                if isinstance(final, dict):
                    _store(engine, user, scope, key, 200, final)
                else:
                    _release(engine, user, scope, key)

            try:
                with watch_stream(stream_ended) as stream:
                    result = handler(req)
            except BaseException:
                with contextlib.suppress(Exception):  # never mask the handler's own error
                    _release(engine, user, scope, key)
                raise
            if isinstance(result, flask.Response):
                if not stream.attached:  # a response that is not a stream: not storable
                    _release(engine, user, scope, key)
                return result  # a stream: stored or released when it ends
            body, status = result if isinstance(result, tuple) else (result, 200)
            if status < 300:
                _store(engine, user, scope, key, status, body)
            else:
                _release(engine, user, scope, key)
            return result

        wrapper.__idempotent__ = scope  # type: ignore[attr-defined]
        return wrapper

    return decorate
