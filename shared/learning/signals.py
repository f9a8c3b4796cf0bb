"""Learning signals: what enters the review queue, verified labels, the label counter.

- **Review queue.** An interaction waits for a human label when its intent confidence
  was below `REVIEW_CONFIDENCE_BELOW` (0.60, the seed rule; the chat pipeline sets
  `needs_review` when it stores the turn) or when its reply got a thumbs-down
  (`shared.learning.feedback.record_feedback` sets it). The queue says which reason applies.
- **Labels** are intent labels, validated against the taxonomy of the intent model in
  service (`intent_labels.json` of the version `current.json` names, checked against the
  manifest's sha256; the keyword rules' intents when nothing is published). An unknown
  label raises `UnknownLabelError`, which lists the valid ones.
- **Audit.** Every change of an interaction's label is a `label_events` row: who, when,
  the old and the new value, and the model whose taxonomy accepted it.
- **Counter.** A first label of an interaction is one more verified label for the model
  in service, counted per *training* of that model (`label_counters`, keyed by the sha256
  of its weights: a retrained model starts at 0, a new version that copies the weights
  keeps counting). When the count exceeds the threshold (500) one retrain request for
  the intent model is recorded, and again at every further multiple (1001, 1501, ... if
  no new model was trained meanwhile). A unique index per (model, weights, threshold)
  makes a replayed crossing a no-op, like the every-N-tasks request of the predictor.
  A relabel is audited but not counted again: it is the same interaction.

Nothing here knows HTTP: errors are `SignalError`s, domain errors whose kind the router
maps to a status (shared/errors.py).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa

from shared.artifacts.manifest import sha256_bytes
from shared.artifacts.store import ArtifactStore, open_store
from shared.artifacts.versions import read_current
from shared.errors import DomainError, Kind
from shared.intent_thresholds import HUMAN_REVIEW_BELOW
from shared.learning.retrain_requests import RetrainRequest

#: The seed rule: below this intent confidence a query is queued for a human label.
REVIEW_CONFIDENCE_BELOW = HUMAN_REVIEW_BELOW
#: Verified labels since the intent model's last training that trigger a retrain.
DEFAULT_RETRAIN_AFTER_LABELS = 500
MODEL = "intent"
REASON = "labels_threshold"
LABELS_FILE = "intent_labels.json"
KEYWORD_RULES = "keyword-rules"

REVIEW_REASONS = ("low_confidence", "thumbs_down", "silver_disagrees")


class SignalError(DomainError):
    """A refused labelling/feedback operation (a `DomainError`: its kind says what went wrong)."""

    kind: ClassVar[Kind] = "invalid"
    code: ClassVar[str] = "bad_request"


class UnknownInteractionError(SignalError, LookupError):
    kind, code = "not_found", "not_found"


class NotYourReplyError(SignalError, PermissionError):
    kind, code = "forbidden", "forbidden"


class UnknownLabelError(SignalError, ValueError):
    """The label is not an intent of the model in service."""

    kind, code = "invalid", "unknown_label"

    def __init__(self, label: str, valid: tuple[str, ...], version: str | None) -> None:
        where = f"intent model {version}" if version else "the keyword rules (no intent model published)"
        # The label itself is not repeated (docs/security.md: no error echoes the client's input).
        super().__init__(f"Unknown label for {where}; valid labels: {', '.join(valid)}.")
        self.valid_labels = list(valid)
        self.details = {"valid_labels": list(valid), "model_version": version}


class TaxonomyUnavailableError(SignalError):
    """The model store could not be read: refuse rather than accept a label blindly."""

    kind, code = "unavailable", "unavailable"


def needs_review(confidence: float | None) -> bool:
    """The seed rule, for code that stores interactions."""
    return confidence is not None and confidence < REVIEW_CONFIDENCE_BELOW


# --- the taxonomy of the model in service ------------------------------------------


@dataclass(frozen=True)
class Taxonomy:
    """The intents a label may take, and which model they come from."""

    labels: tuple[str, ...]
    model_version: str | None  # None: the keyword rules answer (nothing published)
    model_key: str  # sha256 of the intent weights, or "keyword-rules"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "labels": list(self.labels),
            "model_version": self.model_version,
            "model_key": self.model_key,
            "source": "model" if self.model_version else KEYWORD_RULES,
        }


def _keyword_taxonomy() -> Taxonomy:
    from shared.chat.fallbacks import INTENTS  # what answers when no intent model is published

    return Taxonomy(tuple(INTENTS), None, KEYWORD_RULES)


def read_taxonomy(store: ArtifactStore) -> Taxonomy:
    """The intent taxonomy of the version in service in `store`.

    Reads only the pointer, the manifest and `intent_labels.json` (a few KB), never the
    ONNX file; the labels file is checked against the manifest's sha256. Falls back to
    the keyword rules' intents when nothing is published or the version has no intent
    model (that is what serves then). Raises TaxonomyUnavailableError when the store
    cannot be read or does not match its manifest.
    """
    try:
        pointer = read_current(store)
        if pointer is None:
            return _keyword_taxonomy()
        raw_manifest = store.read_bytes(f"{pointer.version}/manifest.json")
        if pointer.manifest_sha256 and sha256_bytes(raw_manifest) != pointer.manifest_sha256:
            raise TaxonomyUnavailableError(f"manifest of {pointer.version} does not match current.json")
        manifest = json.loads(raw_manifest)
        entry = (manifest.get("models") or {}).get(MODEL)
        if not entry:
            return _keyword_taxonomy()
        files = manifest.get("files") or {}
        raw_labels = store.read_bytes(f"{pointer.version}/{LABELS_FILE}")
        expected = (files.get(LABELS_FILE) or {}).get("sha256")
        if expected != sha256_bytes(raw_labels):
            raise TaxonomyUnavailableError(f"{LABELS_FILE} of {pointer.version} does not match its manifest")
        labels = tuple(json.loads(raw_labels)["labels"])
        weights = files.get(entry.get("file", "intent.onnx")) or {}
        key = weights.get("sha256") or f"{pointer.version}:{expected}"
        return Taxonomy(labels, pointer.version, key)
    except TaxonomyUnavailableError:
        raise
    except Exception as exc:  # a store outage or a broken file
        raise TaxonomyUnavailableError(f"cannot read the intent taxonomy from {store}: {exc}") from exc


class TaxonomyCache:
    """`read_taxonomy` at most once per TTL (the registry's pointer TTL by default)."""

    def __init__(self, store: ArtifactStore | str | None = None, *, ttl_s: float | None = None) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: Taxonomy | None = None
        self._at = 0.0

    def _resolve(self) -> tuple[ArtifactStore, float]:
        from shared.config import get_settings

        settings = get_settings()
        store = self._store if self._store is not None else settings.model_store
        if not isinstance(store, ArtifactStore):
            store = self._store = open_store(str(store))
        ttl = settings.model_pointer_ttl_s if self._ttl_s is None else self._ttl_s
        return store, ttl

    def get(self) -> Taxonomy:
        store, ttl = self._resolve()
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= ttl:
                self._value = read_taxonomy(store)
                self._at = time.monotonic()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


_taxonomy = TaxonomyCache()


def current_taxonomy() -> Taxonomy:
    """The process-wide cached taxonomy of the model in settings.model_store."""
    return _taxonomy.get()


def reset_taxonomy_cache() -> None:
    _taxonomy.clear()


# --- labelling -------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelResult:
    interaction_id: str
    label: str
    old_label: str | None
    changed: bool
    labelled_by: str
    labelled_at: Any
    model_version: str | None
    verified_labels: int | None  # the counter after this label (None: a relabel or no change)
    retrain_request: RetrainRequest | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.interaction_id,
            "human_label": self.label,
            "old_label": self.old_label,
            "changed": self.changed,
            "labelled_by": self.labelled_by,
            "labelled_at": self.labelled_at,
            "model_version": self.model_version,
            "verified_labels": self.verified_labels,
            "retrain_request": self.retrain_request.as_dict() if self.retrain_request else None,
        }


def validate_label(label: str, taxonomy: Taxonomy) -> str:
    if label not in taxonomy.labels:
        raise UnknownLabelError(label, taxonomy.labels, taxonomy.model_version)
    return label


def label_interaction(
    conn: sa.Connection,
    admin_uid: str,
    interaction_id: uuid.UUID | str,
    label: str,
    taxonomy: Taxonomy,
    *,
    retrain_after: int = DEFAULT_RETRAIN_AFTER_LABELS,
) -> LabelResult:
    """Set the interaction's human label (audited, counted); see the module docstring.

    The interaction row is locked for the transaction, so two admins labelling the same
    query at once are serialised: both changes are audited, each with its true old value.
    Labelling with the label it already has changes nothing and records nothing.
    """
    validate_label(label, taxonomy)
    row = (
        conn.execute(
            sa.text("SELECT human_label, labelled_by, labelled_at FROM interactions WHERE id = :id FOR UPDATE"),
            {"id": str(interaction_id)},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise UnknownInteractionError("No such interaction.")
    old = row["human_label"]
    if old == label:
        return LabelResult(
            str(interaction_id), label, old, False, row["labelled_by"], row["labelled_at"], None, None, None
        )
    labelled_at = conn.execute(
        sa.text(
            """UPDATE interactions
                  SET human_label = :label, labelled_by = :admin, labelled_at = now(), needs_review = false
                WHERE id = :id
            RETURNING labelled_at"""
        ),
        {"id": str(interaction_id), "label": label, "admin": admin_uid},
    ).scalar_one()
    conn.execute(
        sa.text(
            """INSERT INTO label_events
                   (interaction_id, old_label, new_label, labelled_by, labelled_at, model, model_version, model_key)
               VALUES (:id, :old, :new, :admin, :at, :model, :version, :key)"""
        ),
        {
            "id": str(interaction_id),
            "old": old,
            "new": label,
            "admin": admin_uid,
            "at": labelled_at,
            "model": MODEL,
            "version": taxonomy.model_version,
            "key": taxonomy.model_key,
        },
    )
    value, request = (None, None)
    if old is None:
        value, request = count_verified_label(conn, taxonomy, every=retrain_after, interaction_id=str(interaction_id))
    return LabelResult(
        str(interaction_id), label, old, True, admin_uid, labelled_at, taxonomy.model_version, value, request
    )


def count_verified_label(
    conn: sa.Connection, taxonomy: Taxonomy, *, every: int, interaction_id: str | None = None
) -> tuple[int, RetrainRequest | None]:
    """One more verified label for the intent model in service; a retrain request when
    the count exceeds `every` (and each further multiple). Returns (count, request)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    value = int(
        conn.execute(
            sa.text(
                """INSERT INTO label_counters (model, model_key, model_version, value)
                   VALUES (:model, :key, :version, 1)
                   ON CONFLICT (model, model_key) DO UPDATE
                      SET value = label_counters.value + 1,
                          model_version = EXCLUDED.model_version, updated_at = now()
                   RETURNING value"""
            ),
            {"model": MODEL, "key": taxonomy.model_key, "version": taxonomy.model_version},
        ).scalar_one()
    )
    if value <= every or (value - 1) % every:
        return value, None
    threshold = value - 1  # exceeded: 500 verified labels, and this is the 501st
    payload = {
        "trigger": "labels",
        "models": [MODEL],
        "model": MODEL,
        "model_key": taxonomy.model_key,
        "model_version": taxonomy.model_version,
        "threshold": threshold,
        "every": every,
        "verified_labels": value,
        "last_interaction_id": interaction_id,
    }
    request_id = conn.execute(
        sa.text(
            """INSERT INTO retrain_requests (reason, payload)
               VALUES (:reason, CAST(:payload AS jsonb))
               ON CONFLICT ((payload->>'model'), (payload->>'model_key'), (payload->>'threshold'))
                  WHERE reason = 'labels_threshold' DO NOTHING
               RETURNING id"""
        ),
        {"reason": REASON, "payload": json.dumps(payload)},
    ).scalar()
    if request_id is None:
        return value, None
    return value, RetrainRequest(int(request_id), REASON, threshold)


def verified_label_count(conn: sa.Connection, taxonomy: Taxonomy) -> int:
    """Verified labels counted since the taxonomy's model was trained."""
    return int(
        conn.execute(
            sa.text("SELECT COALESCE((SELECT value FROM label_counters WHERE model = :m AND model_key = :k), 0)"),
            {"m": MODEL, "k": taxonomy.model_key},
        ).scalar_one()
    )


def label_history(conn: sa.Connection, interaction_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """Every label change of one interaction, oldest first (404 if the interaction is unknown)."""
    exists = conn.execute(sa.text("SELECT 1 FROM interactions WHERE id = :id"), {"id": str(interaction_id)}).scalar()
    if exists is None:
        raise UnknownInteractionError("No such interaction.")
    rows = conn.execute(
        sa.text(
            """SELECT id, old_label, new_label, labelled_by, labelled_at, model_version
                 FROM label_events WHERE interaction_id = :id ORDER BY labelled_at, id"""
        ),
        {"id": str(interaction_id)},
    ).mappings()
    return [dict(r) for r in rows]


# --- confusion labels (the confusion detector's training data) ---------------------------


def label_confusion(
    conn: sa.Connection, admin_uid: str, interaction_id: uuid.UUID | str, confused: bool
) -> dict[str, Any]:
    """A human's verdict on one chat turn: was the student confused when they wrote it?

    Stored on the interaction (`confusion_label`, who, when; the last verdict wins). The
    nightly export turns each labelled turn into a labelled conversation (the turn and
    the up to two student messages before it in its session, with their gaps), and the
    training job retrains the confusion detector when a snapshot has some.
    """
    row = (
        conn.execute(
            sa.text(
                """UPDATE interactions
                      SET confusion_label = :confused, confusion_labelled_by = :admin,
                          confusion_labelled_at = now()
                    WHERE id = :id
                RETURNING id, confusion_label, confusion_labelled_by, confusion_labelled_at, is_confused"""
            ),
            {"id": str(interaction_id), "confused": confused, "admin": admin_uid},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise UnknownInteractionError("No such interaction.")
    return {
        "id": str(row["id"]),
        "confused": row["confusion_label"],
        "labelled_by": row["confusion_labelled_by"],
        "labelled_at": row["confusion_labelled_at"],
        "model_said_confused": row["is_confused"],
    }
