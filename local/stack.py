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
    """The configured embedding service if it can embed, else None: nodes keep NULL
    embeddings (retrieval falls back to full text) and /api/health says so."""
    try:
        from shared.embeddings.service import get_embedding_service

        service = get_embedding_service()
        service.embed_one("warm-up")  # fails here, not halfway through the load
        return service.embed, service.model_name
    except Exception:  # a missing model degrades the demo, it does not stop it
        log.warning("no encoder available; demo nodes are loaded without embeddings", exc_info=True)
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
