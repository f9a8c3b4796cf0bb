"""Feedback function: thumbs up/down on replies, and the admin labelling queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import flask
import functions_framework
from pydantic import Field

from shared.api.models import IntegerOnly, StrictModel
from shared.db import get_engine
from shared.feedback import label_interaction, record_feedback, review_queue
from shared.http import Request, Router
from shared.logs import configure_logging
from shared.users import ensure_user

configure_logging()
router = Router("feedback")


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


@router.post("/", body=FeedbackIn)
def submit(req: Request) -> dict:
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        return {"feedback": record_feedback(conn, req.user, req.body.interaction_id, req.body.score, req.body.comment)}


@router.get("/review-queue", admin=True, query=QueueQuery)
def queue(req: Request) -> dict:
    with get_engine().connect() as conn:
        return {"items": review_queue(conn, req.query.limit, req.query.offset)}


@router.post("/label", admin=True, body=LabelIn)
def label(req: Request) -> dict:
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        return {"label": label_interaction(conn, req.user, req.body.interaction_id, req.body.label)}


@functions_framework.http
def feedback(request: flask.Request) -> flask.Response:
    return router.handle(request)
