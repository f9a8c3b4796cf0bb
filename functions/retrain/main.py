"""Retrain function: a Pub/Sub `retrain-requests` message becomes one training run.

- idempotent per message id (at-least-once delivery): a redelivery changes nothing;
- at most one running run per model: a run whose models are busy stays queued and is
  started when the running one ends;
- acknowledges fast: the job runs elsewhere. Locally it is a subprocess of the training
  venv (`TRAINING_PYTHON -m model_export.retrain --run <id>`) whose watcher thread records
  its result; on Google Cloud (`TRAINING_IMAGE_URI`, or the cloud itself) it is a Vertex AI
  CustomJob whose name is recorded on the run, and every message first records the
  outcome of ended jobs (`shared.learning.vertex_jobs.reconcile`); a scheduler tick
  (trigger `reconcile`, every 15 minutes) does only that.
In the cloud without the Vertex AI settings the run is recorded, stays queued, and the
function fails with the missing settings named (Pub/Sub redelivers; nothing runs locally).
"""

from __future__ import annotations

import logging
from functools import cache

import functions_framework
from cloudevents.http import CloudEvent

from shared.db import get_engine
from shared.learning.launchers import LauncherNotConfigured, choose_launcher, reconcile_runs
from shared.learning.runs import RECONCILE, BadRetrainMessage, Launcher, accept, dispatch, parse_pubsub_event
from shared.logs import configure_logging
from shared.models.registry import serve_models

configure_logging()
#: The published models this function loads (none: training runs elsewhere);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models()
log = logging.getLogger("functions.retrain")


@cache
def launcher() -> Launcher:
    return choose_launcher(get_engine())


@functions_framework.cloud_event
def retrain(cloud_event: CloudEvent) -> None:
    try:
        request = parse_pubsub_event(cloud_event.data)
    except BadRetrainMessage as exc:
        # Acknowledge (return normally): redelivering a malformed message cannot succeed.
        log.error("dropping malformed retrain request", extra={"reason": str(exc)})
        return
    if request.trigger == RECONCILE:  # the scheduler's tick: record ended jobs, start waiting runs
        runner = launcher()
        recorded = reconcile_runs(get_engine(), runner)
        started = dispatch(get_engine(), runner)
        log.info("training runs reconciled", extra={"recorded": recorded, "started": started})
        return
    with get_engine().begin() as conn:
        run_id, created = accept(conn, request)
    log.info(
        "retrain request recorded" if created else "duplicate retrain delivery ignored",
        extra={"run_id": str(run_id), "message_id": request.message_id, "trigger": request.trigger},
    )
    try:
        runner = launcher()
    except LauncherNotConfigured as exc:  # fail closed: the run stays queued, the message is retried
        log.error(
            "training is not configured: the run stays queued",
            extra={"run_id": str(run_id), "missing": exc.missing},
        )
        raise
    reconcile_runs(get_engine(), runner)
    started = dispatch(get_engine(), runner)
    if created and str(run_id) not in started:
        log.info("a run of the same model is running: this one waits", extra={"run_id": str(run_id)})
