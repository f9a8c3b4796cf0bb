"""Nightly function: Cloud Scheduler's daily tick (Pub/Sub `learning-nightly`) runs the
learning loop's nightly work: export yesterday's dataset version, record the night's
retrain request in the outbox, and publish every pending request to `retrain-requests`.

The logic lives in `shared/learning/nightly.py`; every step is idempotent per date, so a
redelivered tick changes nothing. Failures are logged (and alerted on), not raised: a
retry would hit the same refusal, and pending requests are retried by the next sweep.
"""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from shared.db import get_engine
from shared.learning.nightly import run_nightly
from shared.logs import configure_logging
from shared.models.registry import serve_models

configure_logging()
#: The published models this function loads (none: silver labels come from an LLM);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models()
log = logging.getLogger("functions.nightly")


@functions_framework.cloud_event
def nightly(cloud_event: CloudEvent) -> None:
    report = run_nightly(get_engine())
    log.info("nightly tick handled", extra={"date": report["date"], "retrain_request": report["retrain_request"]})
