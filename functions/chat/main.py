"""Chat function: the tutor (POST), plus the student's history and the curriculum."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import flask
import functions_framework
from pydantic import Field

from shared.api.models import StrictModel, UserQuery
from shared.chat.conversation import list_sessions, session_messages
from shared.chat.pipeline import ChatInput, ChatPipeline
from shared.content.generator import ContentRequest
from shared.content.service import explanation_events, plan_content, write_content
from shared.curriculum import list_topics
from shared.db import get_engine
from shared.embeddings.service import MAX_CHARS, MAX_TEXTS, embed_for_service
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.http.limits import rate_limited
from shared.http.sse import sse_response
from shared.logs import configure_logging

configure_logging()
router = Router("chat")
pipeline = ChatPipeline()


class ChatRequest(StrictModel):
    message: str = Field(min_length=1, max_length=4000)
    session_id: uuid.UUID | None = None
    topic_id: str | None = Field(None, min_length=1, max_length=128)


@router.post("/", body=ChatRequest)
@idempotent("chat")
@rate_limited("chat")
def chat_turn(req: Request):
    inp = ChatInput(req.body.message, req.body.session_id, req.body.topic_id)
    if req.wants_event_stream():
        return sse_response(pipeline.stream(req.user, inp, req.request_id), req.request_id)
    return pipeline.run(req.user, inp, req.request_id)


class MessagesQuery(StrictModel):
    limit: int = Field(200, ge=1, le=1000)


class ContentBody(StrictModel):
    topic_id: str = Field(min_length=1, max_length=128)
    kind: Literal["explanation", "quiz"]
    level: Literal["beginner", "intermediate", "advanced"] | None = None
    style: Literal["visual", "verbal", "examples", "step_by_step"] | None = None
    questions: int = Field(3, ge=1, le=10)
    focus: str | None = Field(None, max_length=300)


@router.post("/content", body=ContentBody)
@rate_limited("content")
def content(req: Request):
    """Personalized explanation (streamed on request) or quiz (validated JSON) for a topic."""
    the_plan = plan_content(get_engine(), req.user, ContentRequest(**req.body.model_dump()))
    if req.body.kind == "explanation" and req.wants_event_stream():
        return sse_response(explanation_events(get_engine(), the_plan, req.request_id), req.request_id)
    return write_content(get_engine(), req.body.kind, the_plan, req.request_id)


class EmbeddingsIn(StrictModel):
    texts: list[Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]] = Field(min_length=1, max_length=MAX_TEXTS)


@router.post("/embeddings", body=EmbeddingsIn)
def embeddings(req: Request) -> dict:
    """Vectors and the encoder version, for other back-end services (admins, service accounts)."""
    return embed_for_service(req.user, req.body.texts)


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
