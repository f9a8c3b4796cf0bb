"""What `/api/health` reports: database, models and LLM provider, each on its own.

A failing part makes the overall status "degraded", never an exception: health
must answer exactly when something is wrong.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from shared.config import Settings
from shared.db.engine import get_engine, source_name

log = logging.getLogger(__name__)


def database_status(settings: Settings) -> dict[str, Any]:
    from shared.db.migrate import current_revision, head_revision

    try:
        engine = get_engine()
        revision = current_revision(engine)
        with engine.connect() as conn:
            counts = (
                conn.execute(
                    sa.text(
                        """SELECT (SELECT count(*) FROM topics) AS topics,
                              (SELECT count(*) FROM knowledge_nodes) AS knowledge_nodes,
                              (SELECT count(*) FROM knowledge_nodes WHERE embedding IS NULL)
                                  AS nodes_without_embedding,
                              (SELECT count(*) FROM questions) AS questions,
                              (SELECT extversion FROM pg_extension WHERE extname = 'vector')
                                  AS pgvector"""
                    )
                )
                .mappings()
                .one()
            )
        head = head_revision()
        return {
            "status": "ok" if revision == head else "migrations_pending",
            "source": source_name(settings),
            "schema_revision": revision,
            "schema_head": head,
            **dict(counts),
        }
    except Exception as exc:
        log.warning("database health check failed", exc_info=True)
        return {"status": "error", "source": source_name(settings), "error": type(exc).__name__}


def models_status(settings: Settings) -> dict[str, Any]:
    try:
        from shared.models.registry import get_registry  # arrives with the model library
    except ImportError:
        return {"status": "not_installed", "store": settings.model_store}
    try:
        registry = get_registry()
        return {"status": "ok", "store": settings.model_store, **registry.describe()}
    except Exception as exc:
        log.warning("model health check failed", exc_info=True)
        return {"status": "error", "store": settings.model_store, "error": str(exc)[:200]}


def provider_status(settings: Settings) -> dict[str, Any]:
    try:
        from shared.llm.router import get_router

        return {"status": "ok", **get_router().describe()}
    except Exception as exc:
        log.warning("LLM router health check failed", exc_info=True)
        return {"status": "error", "error": str(exc)[:200]}


def health(settings: Settings) -> dict[str, Any]:
    parts = {
        "database": database_status(settings),
        "models": models_status(settings),
        "llm": provider_status(settings),
    }
    ok = parts["database"]["status"] == "ok"
    return {"status": "ok" if ok else "degraded", "environment": settings.environment, **parts}
