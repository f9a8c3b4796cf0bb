"""Chat function: the tutor. This stage serves the student's history and the
curriculum; the tutor pipeline (POST) arrives with the chat issue."""

from __future__ import annotations

import uuid

import flask
import functions_framework
from pydantic import Field

from shared.api.models import StrictModel, UserQuery
from shared.curriculum import list_topics
from shared.db import get_engine
from shared.history import list_sessions, session_messages
from shared.http import Request, Router
from shared.logs import configure_logging

configure_logging()
router = Router("chat")


class MessagesQuery(StrictModel):
    limit: int = Field(200, ge=1, le=1000)


@router.get("/topics")
def topics(req: Request) -> dict:
    with get_engine().connect() as conn:
        return {"topics": list_topics(conn)}


@router.get("/sessions", query=UserQuery)
def sessions(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "sessions": list_sessions(conn, user_id, req.query.limit)}


@router.get("/sessions/<uuid:session_id>/messages", query=MessagesQuery)
def messages(req: Request) -> dict:
    session_id: uuid.UUID = req.path_params["session_id"]
    with get_engine().connect() as conn:
        return {
            "session_id": session_id,
            "messages": session_messages(conn, req.user, session_id, req.query.limit),
        }


@functions_framework.http
def chat(request: flask.Request) -> flask.Response:
    return router.handle(request)
