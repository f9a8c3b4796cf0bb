"""Retrain function: a Pub/Sub `retrain-requests` message becomes a training run.

This stage records the run idempotently (at-least-once delivery); submitting it
to Vertex AI (or a local subprocess) arrives with the learning-loop work, and
until then runs wait in `training_runs` with status 'queued'.
"""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from shared.db import get_engine
from shared.learning.runs import BadRetrainMessage, accept, parse_pubsub_event
from shared.logs import configure_logging

configure_logging()
log = logging.getLogger("functions.retrain")


@functions_framework.cloud_event
def retrain(cloud_event: CloudEvent) -> None:
    try:
        request = parse_pubsub_event(cloud_event.data)
    except BadRetrainMessage as exc:
        # Acknowledge (return normally): redelivering a malformed message cannot succeed.
        log.error("dropping malformed retrain request", extra={"reason": str(exc)})
        return
    with get_engine().begin() as conn:
        run_id, created = accept(conn, request)
    log.info(
        "retrain request recorded" if created else "duplicate retrain delivery ignored",
        extra={"run_id": str(run_id), "message_id": request.message_id, "trigger": request.trigger},
    )
