"""What an operator does with the learning loop: see the runs and the versions, ask for a
retrain, roll the model pointer back (audited).

Serving follows the pointer (`models/current.json`) within its TTL, with no restart, so
a rollback is a pointer move: the version folder is immutable and stays. Every move by an
operator is recorded in `model_pointer_events` (who, when, from, to, why).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from shared.artifacts.manifest import CorruptArtifactError
from shared.artifacts.store import ArtifactStore
from shared.artifacts.versions import list_versions, read_current, read_manifest, set_current
from shared.errors import InvalidError, NotFoundError
from shared.identity import Principal

MODELS = ("intent", "confusion", "grader", "predictor")


class UnknownVersionError(NotFoundError):
    code = "unknown_version"


class UnusableVersionError(InvalidError):
    code = "unusable_version"


def list_runs(conn: sa.Connection, limit: int) -> list[dict[str, Any]]:
    """Training runs, newest first, with their gate numbers and reasons, and the Vertex AI
    CustomJob that ran them (`external_job`; None for a local run)."""
    rows = conn.execute(
        sa.text(
            """SELECT id, trigger, status, params, data_snapshot, metrics, gate, produced_version, error,
                      external_job, created_at, started_at, finished_at
                 FROM training_runs ORDER BY created_at DESC LIMIT :limit"""
        ),
        {"limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def list_model_versions(conn: sa.Connection, store: ArtifactStore) -> dict[str, Any]:
    """Every published version (the store is the truth), newest first, with the database's
    status and activation time where it has them, and which one is in service."""
    pointer = read_current(store)
    known = {
        r["version"]: dict(r)
        for r in conn.execute(
            sa.text("SELECT version, parent_version, status, created_at, activated_at FROM model_versions")
        ).mappings()
    }
    versions = []
    for version in sorted(list_versions(store), key=lambda v: int(v[1:]) if v[1:].isdigit() else 0, reverse=True):
        try:
            manifest = read_manifest(store, version)
        except (FileNotFoundError, ValueError, CorruptArtifactError):
            continue  # a version without a readable manifest is not a version
        row = known.get(version, {})
        versions.append(
            {
                "version": version,
                "parent_version": manifest.get("parent"),
                "status": "current" if pointer and pointer.version == version else row.get("status", "published"),
                "created_at": manifest.get("created") or row.get("created_at"),
                "activated_at": row.get("activated_at"),
                "models": sorted(manifest.get("models", {})),
                "metrics": {name: entry.get("metrics", {}) for name, entry in manifest.get("models", {}).items()},
                "gates": manifest.get("gates"),
            }
        )
    return {"current": pointer.version if pointer else None, "versions": versions}


def request_retrain(conn: sa.Connection, principal: Principal, models: list[str], note: str | None) -> int:
    """An operator's retrain request: a row the outbox publishes like any other."""
    payload = {"trigger": "manual", "models": models, "requested_by": principal.uid, "note": note}
    return int(
        conn.execute(
            sa.text("INSERT INTO retrain_requests (reason, payload) VALUES ('manual', CAST(:p AS jsonb)) RETURNING id"),
            {"p": json.dumps(payload)},
        ).scalar_one()
    )


def roll_back(
    conn: sa.Connection, store: ArtifactStore, principal: Principal, version: str, reason: str | None
) -> dict[str, Any]:
    """Point serving at an earlier (or any published) version; audited. The version must
    exist and have a readable manifest; its files are verified by every instance that
    loads it (a corrupt one is refused there and the previous one keeps serving)."""
    if version not in set(list_versions(store)):
        raise UnknownVersionError("No such model version.")
    try:
        read_manifest(store, version)
    except (FileNotFoundError, ValueError, CorruptArtifactError):
        raise UnusableVersionError("That version has no readable manifest; it cannot serve.") from None
    before = read_current(store)
    previous = before.version if before else None
    conn.execute(
        sa.text(
            """INSERT INTO model_pointer_events (from_version, to_version, actor, reason)
               VALUES (:f, :t, :a, :r)"""
        ),
        {"f": previous, "t": version, "a": principal.uid, "r": reason},
    )
    conn.execute(
        sa.text("UPDATE model_versions SET status = 'retired' WHERE status = 'current' AND version <> :v"),
        {"v": version},
    )
    conn.execute(
        sa.text("UPDATE model_versions SET status = 'current', activated_at = now() WHERE version = :v"),
        {"v": version},
    )
    set_current(store, version)  # last: if it fails, the caller's transaction rolls the audit back
    return {"current": version, "previous": previous}


def pointer_history(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT id, from_version, to_version, actor, reason, created_at
                 FROM model_pointer_events ORDER BY id DESC LIMIT :limit"""
        ),
        {"limit": limit},
    ).mappings()
    return [dict(r) for r in rows]
