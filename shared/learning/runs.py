"""Training runs, created idempotently from retrain requests.

Pub/Sub delivers at least once, so the message id is the run's idempotency
key: a redelivered message finds its run and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

TRIGGERS = {"labels", "tasks", "schedule", "manual"}


class BadRetrainMessage(ValueError):
    """The message cannot be a retrain request; retrying it will not help."""


@dataclass(frozen=True)
class RetrainRequest:
    message_id: str
    trigger: str
    params: dict[str, Any]


def parse_pubsub_event(data: dict[str, Any]) -> RetrainRequest:
    """Decode the CloudEvent data of a Pub/Sub push (`{"message": {...}}`)."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict) or not message.get("messageId"):
        raise BadRetrainMessage("event carries no Pub/Sub message with a messageId")
    body: dict[str, Any] = {}
    if message.get("data"):
        try:
            body = json.loads(base64.b64decode(message["data"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadRetrainMessage(f"message data is not base64 JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRetrainMessage("message data must be a JSON object")
    trigger = body.get("trigger") or (message.get("attributes") or {}).get("trigger") or "manual"
    if trigger not in TRIGGERS:
        raise BadRetrainMessage(f"unknown trigger {trigger!r}; expected one of {sorted(TRIGGERS)}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRetrainMessage("params must be a JSON object")
    return RetrainRequest(str(message["messageId"]), trigger, params)


def accept(conn: sa.Connection, request: RetrainRequest) -> tuple[uuid.UUID, bool]:
    """Record the run; returns (run id, whether this delivery created it)."""
    run_id = conn.execute(
        sa.text(
            """INSERT INTO training_runs (idempotency_key, trigger, params)
               VALUES (:key, :trigger, CAST(:params AS jsonb))
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id"""
        ),
        {"key": request.message_id, "trigger": request.trigger, "params": json.dumps(request.params)},
    ).scalar()
    if run_id is not None:
        return run_id, True
    existing = conn.execute(
        sa.text("SELECT id FROM training_runs WHERE idempotency_key = :key"),
        {"key": request.message_id},
    ).scalar_one()
    return existing, False
