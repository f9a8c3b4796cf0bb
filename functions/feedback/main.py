"""Feedback function: thumbs up/down on replies, the student's profile, and the admin
labelling queue and learning-loop operators."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import flask
import functions_framework
from pydantic import Field, StrictBool

from shared.api.models import IntegerOnly, ResponseBody, ResponseModel, RetrainRequestOut, StrictModel
from shared.db import get_engine
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.learning.feedback import label_interaction, record_feedback, review_queue
from shared.learning.operators import (
    list_model_versions,
    list_runs,
    pointer_history,
    request_retrain,
    roll_back,
)
from shared.learning.outbox import sweep_after_commit
from shared.learning.signals import current_taxonomy, label_confusion, label_history
from shared.logs import configure_logging
from shared.models.registry import serve_models
from shared.personalisation import Level, Style
from shared.users import ensure_user, read_profile, update_profile

configure_logging()
#: The published models this function loads (none: the intent taxonomy is read from the store, not a model);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models()
router = Router("feedback", openapi=True)


class FeedbackIn(StrictModel):
    interaction_id: uuid.UUID
    score: Annotated[Literal[-1, 1], IntegerOnly] = Field(description="1 = thumbs up, -1 = thumbs down")
    comment: str | None = Field(None, max_length=2000)


class QueueQuery(StrictModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class LabelIn(StrictModel):
    interaction_id: uuid.UUID
    label: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")


# -- response bodies ---------------------------------------------------------------------
class FeedbackOut(ResponseModel):
    id: uuid.UUID = Field(description="the interaction rated")
    feedback_score: Literal[-1, 1]
    feedback_comment: str | None
    feedback_at: datetime
    needs_review: bool = Field(description="a thumbs down queues the interaction for labelling")


class FeedbackRecorded(ResponseBody):
    feedback: FeedbackOut


class SilverOut(ResponseModel):
    label: str
    confidence: float
    provider: str
    prompt_version: str


class QueueItem(ResponseModel):
    id: uuid.UUID
    user_id: str
    query: str
    intent: str | None
    intent_confidence: float | None
    intent_probs: dict[str, float] | None
    feedback_score: int | None
    created_at: datetime
    silver: SilverOut | None = Field(description="the LLM's silver label, if any (shared/learning/silver.py)")
    reasons: list[str] = Field(description="why it is queued: low_confidence, thumbs_down, silver_disagrees")


class ReviewQueue(ResponseBody):
    items: list[QueueItem]


class LabelOut(ResponseModel):
    id: uuid.UUID = Field(description="the interaction labelled")
    human_label: str
    old_label: str | None
    changed: bool
    labelled_by: str
    labelled_at: datetime
    model_version: str | None
    verified_labels: int | None = Field(description="the verified-label count after it (null: a relabel, no change)")
    retrain_request: RetrainRequestOut | None


class Labelled(ResponseBody):
    label: LabelOut


class TaxonomyOut(ResponseModel):
    model: str
    labels: list[str]
    model_version: str | None
    model_key: str | None
    source: str = Field(description="model, or keyword-rules when no intent model is published")


class TaxonomyBody(ResponseBody):
    taxonomy: TaxonomyOut


class LabelEvent(ResponseModel):
    id: int
    old_label: str | None
    new_label: str
    labelled_by: str
    labelled_at: datetime
    model_version: str | None


class LabelHistory(ResponseBody):
    interaction_id: uuid.UUID
    events: list[LabelEvent]


class RunOut(ResponseModel):
    id: uuid.UUID
    trigger: str
    status: str = Field(description="queued, running, succeeded, rejected or failed")
    params: dict[str, Any] | None
    data_snapshot: dict[str, Any] | None
    metrics: dict[str, Any] | None
    gate: dict[str, Any] | None = Field(description="the gates' numbers and the reasons of a rejection")
    produced_version: str | None
    error: str | None
    external_job: str | None = Field(description="the Vertex AI CustomJob that ran it (null: a local run)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ConfusionLabelOut(ResponseModel):
    id: uuid.UUID
    confused: bool
    labelled_by: str
    labelled_at: datetime
    model_said_confused: bool | None = Field(description="what the detector in service said at the time")


class ConfusionLabelled(ResponseBody):
    confusion_label: ConfusionLabelOut


class Runs(ResponseBody):
    runs: list[RunOut]


class VersionOut(ResponseModel):
    version: str
    parent_version: str | None
    status: str = Field(description="current, published, or the database's status")
    created_at: datetime | None
    activated_at: datetime | None
    models: list[str]
    metrics: dict[str, Any] = Field(description="each model's metrics from the version's manifest")
    gates: dict[str, Any] | None


class Versions(ResponseBody):
    current: str | None = Field(description="the version in service (null: none published)")
    versions: list[VersionOut]


class RolledBack(ResponseBody):
    current: str
    previous: str | None


class PointerEvent(ResponseModel):
    id: int
    from_version: str | None
    to_version: str
    actor: str
    reason: str | None
    created_at: datetime


class PointerHistory(ResponseBody):
    events: list[PointerEvent]


class RetrainAsked(ResponseModel):
    id: int
    models: list[str]


class RetrainRequested(ResponseBody):
    retrain_request: RetrainAsked


@router.post("/", body=FeedbackIn, response=FeedbackRecorded)
@idempotent("feedback")
def submit(req: Request) -> dict:
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        body = req.body
        return {"feedback": record_feedback(conn, req.user.uid, body.interaction_id, body.score, body.comment)}


@router.get("/review-queue", admin=True, query=QueueQuery, response=ReviewQueue)
def queue(req: Request) -> dict:
    with get_engine().connect() as conn:
        return {"items": review_queue(conn, req.query.limit, req.query.offset)}


@router.post("/label", admin=True, body=LabelIn, response=Labelled)
def label(req: Request) -> dict:
    taxonomy = current_taxonomy()
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        result = label_interaction(
            conn,
            req.user.uid,
            req.body.interaction_id,
            req.body.label,
            taxonomy,
            retrain_after=router.settings.retrain_after_verified_labels,
        )
    if result.retrain_request is not None:
        sweep_after_commit()  # committed above: publish the new request now (best effort)
    return {"label": result.as_dict()}


class ConfusionLabelIn(StrictModel):
    interaction_id: uuid.UUID
    confused: StrictBool = Field(description="was the student confused when they wrote this turn?")


@router.post("/confusion-label", admin=True, body=ConfusionLabelIn, response=ConfusionLabelled)
def confusion_label(req: Request) -> dict:
    """Label a chat turn confused / not confused: the confusion detector's training data."""
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        return {"confusion_label": label_confusion(conn, req.user.uid, req.body.interaction_id, req.body.confused)}


# --- the student's profile ----------------------------------------------------------
class ProfileQuery(StrictModel):
    """`?user_id=` defaults to the caller; teachers and admins may name any student."""

    user_id: str | None = Field(None, min_length=1, max_length=128)


class ProfileIn(StrictModel):
    """Fields left out keep their value; null clears one."""

    grade: int | None = Field(None, ge=1, le=12, description="School grade 1-12")
    level: Level | None = None
    learning_style: Style | None = None


class ProfileOut(ResponseModel):
    user_id: str
    role: Literal["student", "teacher", "admin", "service"]
    grade: int | None
    level: Level | None
    learning_style: Style | None
    updated_at: datetime | None


class ProfileBody(ResponseBody):
    profile: ProfileOut


@router.get("/profile", query=ProfileQuery, response=ProfileBody)
def profile(req: Request) -> dict:
    """A student's grade, level and learning style: their own, or any (teachers, admins)."""
    with get_engine().begin() as conn:
        return {"profile": read_profile(conn, req.user, req.query.user_id or req.user.uid)}


@router.put("/profile", query=ProfileQuery, body=ProfileIn, response=ProfileBody)
def set_profile(req: Request) -> dict:
    """Set the caller's profile (an admin may set a student's); the tutor adapts to it."""
    changes = req.body.model_dump(include=req.body.model_fields_set)
    with get_engine().begin() as conn:
        return {"profile": update_profile(conn, req.user, req.query.user_id or req.user.uid, changes)}


# --- the taxonomy and the label audit -----------------------------------------------


@router.get("/taxonomy", admin=True, response=TaxonomyBody)
def taxonomy(req: Request) -> dict:
    """The labels the model in service accepts."""
    return {"taxonomy": current_taxonomy().as_dict()}


@router.get("/labels/<uuid:interaction_id>/history", admin=True, response=LabelHistory)
def history(req: Request) -> dict:
    """Every label change of one interaction: who, when, the old and the new value."""
    interaction_id = req.path_params["interaction_id"]
    with get_engine().connect() as conn:
        return {"interaction_id": str(interaction_id), "events": label_history(conn, interaction_id)}


# --- the learning loop's operators: runs, versions, a retrain, a rollback ------------
class RunsQuery(StrictModel):
    limit: int = Field(50, ge=1, le=500)


class RetrainIn(StrictModel):
    models: list[Literal["intent", "confusion", "grader", "predictor"]] = Field(min_length=1, max_length=4)
    note: str | None = Field(None, max_length=500)


class RollbackIn(StrictModel):
    version: str = Field(min_length=2, max_length=16, pattern=r"^v[0-9]+$")
    reason: str | None = Field(None, max_length=500)


def _model_store():
    from shared.artifacts.store import open_store

    return open_store(router.settings.model_store)


@router.get("/training-runs", admin=True, query=RunsQuery, response=Runs)
def training_runs(req: Request) -> dict:
    """Training runs, newest first: status, timestamps, gate numbers and reasons."""
    with get_engine().connect() as conn:
        return {"runs": list_runs(conn, req.query.limit)}


@router.get("/model-versions", admin=True, response=Versions)
def model_versions(req: Request) -> dict:
    """Every published model version, which one serves, and each one's metrics."""
    with get_engine().connect() as conn:
        return list_model_versions(conn, _model_store())


@router.post("/model-versions/rollback", admin=True, body=RollbackIn, response=RolledBack)
def rollback(req: Request) -> dict:
    """Point serving at another published version (instances follow within the pointer TTL)."""
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        return roll_back(conn, _model_store(), req.user, req.body.version, req.body.reason)


@router.get("/model-versions/history", admin=True, query=RunsQuery, response=PointerHistory)
def pointer_moves(req: Request) -> dict:
    """The audit of pointer moves by operators: who, when, from, to, why."""
    with get_engine().connect() as conn:
        return {"events": pointer_history(conn, req.query.limit)}


@router.post("/retrain", admin=True, body=RetrainIn, response=RetrainRequested)
def retrain(req: Request) -> dict:
    """Ask for a retrain of the named models now (published to retrain-requests)."""
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        request_id = request_retrain(conn, req.user, list(req.body.models), req.body.note)
    sweep_after_commit()
    return {"retrain_request": {"id": request_id, "models": list(req.body.models)}}


@functions_framework.http
def feedback(request: flask.Request) -> flask.Response:
    return router.handle(request)
