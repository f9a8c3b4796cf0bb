"""The nightly tick of the learning loop (Cloud Scheduler, once a day).

0. Silver labels: an LLM grades up to `SILVER_LABELS_PER_NIGHT` unlabelled interactions
   (`shared.learning.silver`; nothing with only the offline provider). Best effort: a
   failure is reported and the night goes on.
1. Export yesterday's (UTC) dataset version (`shared.learning.datasets`); a version that
   exists already is left alone, so a retried tick is harmless.
2. Record the night's retrain request in the outbox (reason 'schedule', one per date:
   a unique index makes a retried tick insert nothing). Its params name the dataset
   version just written, so the training job reads exactly that snapshot.
3. Sweep the outbox: this request and any request an earlier sweep failed to publish.

In the cloud the `nightly` function runs this on the scheduler's Pub/Sub tick; locally
`python -m shared.learning.nightly [--date YYYY-MM-DD]` does the same. Steps 2 and 3 run
even when the export fails (the error is reported), so a broken export does not also
stall the publishing of pending requests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from typing import Any

import sqlalchemy as sa

from shared.artifacts.store import ArtifactStore
from shared.learning.datasets import (
    DatasetError,
    DatasetExistsError,
    export_dataset,
    manifest_key,
    open_datasets_store,
    parse_date,
)
from shared.learning.outbox import Publisher, sweep
from shared.llm import LLMRouter

log = logging.getLogger(__name__)

#: the night retrains these; confusion only when the snapshot has labelled conversations
SCHEDULE_MODELS = ["intent", "predictor", "confusion"]


def record_schedule_request(conn: sa.Connection, date: dt.date, *, dataset: str | None) -> int | None:
    """The night's retrain request; None when this date's was recorded already."""
    payload = {
        "trigger": "schedule",
        "models": SCHEDULE_MODELS,
        "date": date.isoformat(),
        "dataset_date": date.isoformat() if dataset else None,
        "dataset_manifest": dataset,
    }
    return conn.execute(
        sa.text(
            """INSERT INTO retrain_requests (reason, payload)
               VALUES ('schedule', CAST(:payload AS jsonb))
               ON CONFLICT ((payload->>'date')) WHERE reason = 'schedule' DO NOTHING
               RETURNING id"""
        ),
        {"payload": json.dumps(payload)},
    ).scalar()


def run_nightly(
    engine: sa.Engine,
    *,
    date: dt.date | str | None = None,
    store: ArtifactStore | None = None,
    publisher: Publisher | None = None,
    router: LLMRouter | None = None,
    silver_limit: int | None = None,
) -> dict[str, Any]:
    """Silver labels, export, record the night's request, sweep; returns what happened (for logs)."""
    date = parse_date(date) if date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    store = store or open_datasets_store()
    report: dict[str, Any] = {"date": date.isoformat(), "datasets": store.uri}
    report["silver"] = _silver(engine, router, silver_limit)
    dataset: str | None = manifest_key(date)
    try:
        result = export_dataset(engine, store, date)
        report["export"] = {name: t["rows"] for name, t in result.manifest["tables"].items()}
    except DatasetExistsError:
        report["export"] = "exists"
    except DatasetError as exc:
        log.error("nightly export failed", extra={"date": date.isoformat(), "reason": str(exc)})
        report["export"] = f"failed: {exc}"
        dataset = None
    with engine.begin() as conn:
        report["retrain_request"] = record_schedule_request(conn, date, dataset=dataset)
    report["sweep"] = sweep(engine, publisher).as_dict()
    log.info("nightly learning tick", extra={"nightly": report})
    return report


def _silver(engine: sa.Engine, router: LLMRouter | None, limit: int | None) -> dict[str, Any] | str:
    from shared.config import get_settings
    from shared.learning.silver import label_silver
    from shared.llm import get_router

    settings = get_settings()
    limit = settings.silver_labels_per_night if limit is None else limit
    if limit <= 0:
        return "off (SILVER_LABELS_PER_NIGHT=0)"
    try:
        return label_silver(
            engine, router or get_router(), limit=limit, budget_s=settings.silver_labels_budget_s
        ).as_dict()
    except Exception as exc:  # the night's export and requests matter more
        log.exception("silver labelling failed")
        return f"failed: {exc}"[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.learning.nightly", description=__doc__.split("\n")[0])
    parser.add_argument("--date", help="UTC date to export (default: yesterday)")
    parser.add_argument("--store", help="datasets store URI or folder (default: DATASETS_URI or <state>/datasets)")
    args = parser.parse_args(argv)
    from shared.db import get_engine

    store = open_datasets_store(args.store)
    report = run_nightly(get_engine(), date=args.date, store=store)
    print(json.dumps(report, indent=2, default=str))
    return 1 if str(report.get("export", "")).startswith("failed") or report["sweep"]["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
