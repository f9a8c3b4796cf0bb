"""The retrain outbox: pending `retrain_requests` rows become `retrain-requests` messages.

A threshold crossing (completed tasks, verified labels) or the nightly tick records a
`retrain_requests` row in the same transaction as the change that caused it, so a
request is never lost and never exists without its cause (the transactional outbox).
`sweep()` then publishes every pending row and marks it 'published' (with the message
id) only after the publish has been confirmed, i.e. the publish future resolved. A
failed or timed-out publish leaves the row 'pending' with `publish_attempts` and
`last_error` updated, and the next sweep retries it.

When the sweep runs: right after the commit that created a request (the feedback and
prediction functions call `sweep_after_commit()`), and on the nightly Cloud Scheduler
tick (`shared.learning.nightly`). Sweeps may overlap (several instances, the nightly
job): each row is claimed with `FOR UPDATE SKIP LOCKED` in its own short transaction
and the lock is held while its publish is confirmed, so no two sweeps publish one row
at the same time.

Delivery is at least once: a crash between a confirmed publish and the commit of
'published' republishes the row on the next sweep. Every message therefore carries the
row id as its idempotency key (attribute `request_id`, and `params.request_id` in the
data); consumers dedupe on it, not on Pub/Sub's message id, which differs per publish.

Message shape (what `shared.learning.runs.parse_pubsub_event` reads):
    data        base64 of JSON {"trigger", "models", "request_id", "reason", "params": {...payload, "request_id"}}
                (the payload without PRIVATE_PAYLOAD_KEYS: no student uid leaves in a message)
    attributes  {"trigger": "tasks"|"labels"|"schedule"|"manual", "models": "intent,predictor",
                 "request_id": "<row id>", "reason": "<row reason>"}

Back ends: `PubSubPublisher` (google-cloud-pubsub; RETRAIN_TOPIC set, or the emulator
via PUBSUB_EMULATOR_HOST), and `LocalPublisher` (no RETRAIN_TOPIC: the design's
"direct delivery to the local subscriber"), which hands the same push envelope
(`{"message": {"data", "attributes", "messageId", "publishTime"}, "subscription"}`) to
the retrain function's handler in-process, or to any callback given.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from shared.config import REPO_ROOT

log = logging.getLogger(__name__)

#: reason -> trigger and models, for rows whose payload does not say.
REASON_DEFAULTS: dict[str, tuple[str, list[str]]] = {
    "tasks_threshold": ("tasks", ["predictor"]),
    "labels_threshold": ("labels", ["intent"]),
    "schedule": ("schedule", ["intent", "predictor", "confusion"]),
}
LOCAL_SUBSCRIPTION = "projects/local/subscriptions/retrain-requests-local"
#: Payload keys that stay in the database: a student's uid is no training parameter.
PRIVATE_PAYLOAD_KEYS = frozenset({"last_user_id"})


class OutboxError(RuntimeError):
    """The outbox cannot run as configured (e.g. the cloud without RETRAIN_TOPIC)."""


@dataclass(frozen=True)
class OutboxMessage:
    """One retrain request as it goes on the topic."""

    request_id: int
    data: bytes
    attributes: dict[str, str]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OutboxMessage:
        payload = {k: v for k, v in dict(row.get("payload") or {}).items() if k not in PRIVATE_PAYLOAD_KEYS}
        reason = str(row["reason"])
        default_trigger, default_models = REASON_DEFAULTS.get(reason, ("manual", []))
        trigger = str(payload.get("trigger") or default_trigger)
        models = [str(m) for m in (payload.get("models") or default_models)]
        request_id = int(row["id"])
        body = {
            "trigger": trigger,
            "models": models,
            "request_id": request_id,
            "reason": reason,
            "params": {**payload, "request_id": request_id, "reason": reason},
        }
        data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
        attributes = {
            "trigger": trigger,
            "models": ",".join(models),
            "request_id": str(request_id),
            "reason": reason,
        }
        return cls(request_id, data, attributes)

    @property
    def idempotency_key(self) -> str:
        return f"retrain_requests/{self.request_id}"

    def push_envelope(self, message_id: str, publish_time: datetime | None = None) -> dict[str, Any]:
        """What a Pub/Sub push subscription (and Eventarc's CloudEvent data) carries."""
        when = (publish_time or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
        return {
            "message": {
                "data": base64.b64encode(self.data).decode("ascii"),
                "attributes": dict(self.attributes),
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": when,
                "publish_time": when,
            },
            "subscription": LOCAL_SUBSCRIPTION,
        }


class Publisher(Protocol):
    def publish(self, message: OutboxMessage, *, timeout: float) -> str:
        """Publish and wait for confirmation; return the message id or raise."""


class PubSubPublisher:
    """google-cloud-pubsub on `topic` (projects/<p>/topics/<t>).

    The client honours PUBSUB_EMULATOR_HOST by itself (the tests use the emulator).
    """

    def __init__(self, topic: str, *, client: Any = None) -> None:
        if not topic.startswith("projects/") or "/topics/" not in topic:
            raise OutboxError(f"RETRAIN_TOPIC must be projects/<project>/topics/<topic>, got {topic!r}")
        self.topic = topic
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, message: OutboxMessage, *, timeout: float) -> str:
        future = self.client.publish(self.topic, message.data, **message.attributes)
        return str(future.result(timeout=timeout))


def _retrain_handler() -> Callable[[Any], None]:
    """The retrain function's entry point, loaded from functions/retrain/main.py."""
    path = REPO_ROOT / "functions" / "retrain" / "main.py"
    spec = importlib.util.spec_from_file_location("cognitive_functions_retrain_main", path)
    if spec is None or spec.loader is None or not path.exists():
        raise OutboxError(f"no retrain function at {path} to deliver to locally")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.retrain


def deliver_to_retrain_function(envelope: dict[str, Any]) -> None:
    """Default local subscriber: the retrain function, called as Eventarc would call it."""
    from cloudevents.http import CloudEvent

    handler = _local_handler()
    handler(
        CloudEvent(
            {
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": "//pubsub.googleapis.com/projects/local/topics/retrain-requests",
            },
            envelope,
        )
    )


_handler_lock = threading.Lock()
_handler: Callable[[Any], None] | None = None


def _local_handler() -> Callable[[Any], None]:
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = _retrain_handler()
        return _handler


@dataclass
class LocalPublisher:
    """Direct delivery to the local subscriber, in-process and synchronous.

    `deliver` receives the push envelope a Pub/Sub push would carry; the publish is
    confirmed when it returns, and fails (the row stays pending) when it raises. The
    message id is deterministic per row (`local-<row id>`), so redelivering a row that
    was handled but not marked is deduplicated even by a consumer that keys on it.
    """

    deliver: Callable[[dict[str, Any]], None] = deliver_to_retrain_function
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, message: OutboxMessage, *, timeout: float) -> str:
        message_id = f"local-{message.request_id}"
        envelope = message.push_envelope(message_id)
        self.deliver(envelope)
        self.delivered.append(envelope)
        return message_id


_pubsub_publishers: dict[str, PubSubPublisher] = {}
_pubsub_lock = threading.Lock()


def default_publisher() -> Publisher:
    """Pub/Sub when RETRAIN_TOPIC is set; the local subscriber otherwise (never in the cloud).

    One PubSubPublisher (one client, one channel) per topic and process: a function
    instance reuses it across requests.
    """
    from shared.config import get_settings

    settings = get_settings()
    if settings.retrain_topic:
        with _pubsub_lock:
            publisher = _pubsub_publishers.get(settings.retrain_topic)
            if publisher is None:
                publisher = _pubsub_publishers[settings.retrain_topic] = PubSubPublisher(settings.retrain_topic)
            return publisher
    if settings.environment == "cloud":
        raise OutboxError("RETRAIN_TOPIC is not set: refusing to deliver retrain requests locally in the cloud")
    return LocalPublisher()


@dataclass
class SweepResult:
    published: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"published": self.published, "failed": self.failed}


def sweep(
    engine: sa.Engine,
    publisher: Publisher | None = None,
    *,
    timeout: float | None = None,
    limit: int = 100,
) -> SweepResult:
    """Publish pending retrain requests, oldest first; see the module docstring.

    Never raises for a failed publish (it is recorded on the row and reported in the
    result); database errors do propagate.
    """
    if timeout is None:
        from shared.config import get_settings

        timeout = get_settings().retrain_publish_timeout_s
    publisher = publisher or default_publisher()
    result = SweepResult()
    tried: list[int] = []
    for _ in range(limit):
        with engine.begin() as conn:
            row = (
                conn.execute(
                    sa.text(
                        """SELECT id, reason, payload FROM retrain_requests
                            WHERE status = 'pending' AND NOT (id = ANY(CAST(:tried AS bigint[])))
                            ORDER BY id LIMIT 1
                              FOR UPDATE SKIP LOCKED"""
                    ),
                    {"tried": tried},
                )
                .mappings()
                .first()
            )
            if row is None:
                break
            tried.append(int(row["id"]))
            message = OutboxMessage.from_row(dict(row))
            try:
                message_id = publisher.publish(message, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - any publish failure leaves the row pending
                error = f"{type(exc).__name__}: {exc}"[:2000]
                conn.execute(
                    sa.text(
                        """UPDATE retrain_requests
                              SET publish_attempts = publish_attempts + 1, last_error = :error
                            WHERE id = :id"""
                    ),
                    {"id": message.request_id, "error": error},
                )
                log.warning(
                    "retrain request publish failed; stays pending",
                    extra={"retrain_request_id": message.request_id, "error": error},
                )
                result.failed.append({"id": message.request_id, "error": error})
                continue
            conn.execute(
                sa.text(
                    """UPDATE retrain_requests
                          SET status = 'published', published_at = now(), message_id = :message_id,
                              publish_attempts = publish_attempts + 1, last_error = NULL
                        WHERE id = :id"""
                ),
                {"id": message.request_id, "message_id": message_id},
            )
            log.info(
                "retrain request published",
                extra={
                    "retrain_request_id": message.request_id,
                    "message_id": message_id,
                    "trigger": message.attributes["trigger"],
                },
            )
            result.published.append({"id": message.request_id, "message_id": message_id})
    return result


def sweep_after_commit(engine: sa.Engine | None = None, publisher: Publisher | None = None) -> SweepResult | None:
    """The sweep a request handler runs after committing a new retrain request.

    Best effort: any error is logged and swallowed (the request stays pending and the
    nightly sweep publishes it), so the user's write never fails because of it.
    """
    try:
        if engine is None:
            from shared.db import get_engine

            engine = get_engine()
        return sweep(engine, publisher)
    except Exception:  # never fail the caller's committed write
        log.warning("outbox sweep after commit failed; the nightly sweep will retry", exc_info=True)
        return None


def pending(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT id, reason, payload, status, publish_attempts, last_error, created_at
                 FROM retrain_requests WHERE status = 'pending' ORDER BY id"""
        )
    ).mappings()
    return [dict(r) for r in rows]
