"""Retrain function: a Pub/Sub `retrain-requests` message becomes one training run.

- idempotent per message id (at-least-once delivery): a redelivery changes nothing;
- at most one running run per model: a run whose models are busy stays queued and is
  started when the running one ends;
- acknowledges fast: locally the job is started as a subprocess of the training venv
  (`TRAINING_PYTHON -m model_export.retrain --run <id>`) and a watcher thread records
  its result (queued -> running -> succeeded / rejected / failed, with timestamps, and
  the published version in `model_versions`).
In the cloud (`TRAINING_IMAGE_URI` set) the run is recorded and stays queued until a
Vertex AI launcher submits it.
"""

from __future__ import annotations

import logging
from functools import cache

import functions_framework
from cloudevents.http import CloudEvent

from shared.config import get_settings
from shared.db import get_engine
from shared.learning.runs import BadRetrainMessage, LocalLauncher, accept, dispatch, parse_pubsub_event
from shared.logs import configure_logging

configure_logging()
log = logging.getLogger("functions.retrain")


@cache
def launcher() -> LocalLauncher | None:
    settings = get_settings()
    if settings.training_image_uri:
        return None
    return LocalLauncher(
        engine=get_engine(),
        python=settings.training_python,
        store_uri=settings.model_store,
        datasets_uri=settings.datasets_uri,
        log_dir=settings.state_dir / "runs",
    )


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
    runner = launcher()
    if runner is None:
        log.warning("no Vertex AI launcher yet: the run stays queued", extra={"run_id": str(run_id)})
        return
    started = dispatch(get_engine(), runner)
    if created and str(run_id) not in started:
        log.info("a run of the same model is running: this one waits", extra={"run_id": str(run_id)})
