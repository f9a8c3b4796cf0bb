"""Prepare the local stack: database up, schema migrated, demo course loaded."""

from __future__ import annotations

import logging
from pathlib import Path

from shared.config import Settings
from shared.curriculum import LoadSummary, load_course_file
from shared.db.engine import get_engine
from shared.db.migrate import upgrade

log = logging.getLogger(__name__)

DEMO_COURSE = Path(__file__).resolve().parent / "demo" / "course.json"


def _encoder():
    """The published encoder if the model library has one, else None (nodes keep
    NULL embeddings and /api/health says so)."""
    try:
        from shared.models.registry import get_registry

        encoder = get_registry().get("encoder")
        return encoder.embed, getattr(encoder, "model_id", "encoder")
    except Exception:  # noqa: BLE001 - a missing model degrades the demo, it does not stop it
        log.warning("no encoder available; demo nodes are loaded without embeddings")
        return None, None


def prepare(settings: Settings, *, demo: bool = True) -> LoadSummary | None:
    engine = get_engine()
    revision = upgrade(engine)
    log.info("schema migrated", extra={"revision": revision})
    if not demo:
        return None
    embed, model_id = _encoder()
    with engine.begin() as conn:
        summary = load_course_file(conn, DEMO_COURSE, embed=embed, embedding_model=model_id)
    log.info("demo course loaded", extra={"summary": summary.__dict__})
    return summary
