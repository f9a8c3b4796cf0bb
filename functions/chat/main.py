"""Chat function: the tutor (POST), plus the student's history and the curriculum."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import flask
import functions_framework
from pydantic import Field, RootModel

from shared.api.models import LlmUsage, ResponseBody, ResponseModel, StrictModel, UserQuery
from shared.chat.conversation import list_sessions, session_messages
from shared.chat.pipeline import ChatInput, ChatPipeline
from shared.content.generator import ContentRequest
from shared.content.quiz import Quiz
from shared.content.service import explanation_events, plan_content, write_content
from shared.curriculum import list_topics
from shared.db import get_engine
from shared.embeddings.service import MAX_CHARS, MAX_TEXTS, embed_for_service
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.http.limits import rate_limited
from shared.http.sse import sse_response
from shared.logs import configure_logging
from shared.models.registry import serve_models
from shared.warm_up import when_serving

configure_logging()
#: The published models this function loads (the tutor pipeline: retrieval, intent, confusion; /embeddings);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models("encoder", "intent", "confusion", "encoder_intent")
# What its first request would do, started as the serving worker starts (shared/warm_up.py).
when_serving(models=True, database=True, llm_task="chat")
router = Router("chat", openapi=True)
pipeline = ChatPipeline()

Level = Literal["beginner", "intermediate", "advanced"]
Style = Literal["visual", "verbal", "examples", "step_by_step"]


class ChatRequest(StrictModel):
    message: str = Field(min_length=1, max_length=4000)
    session_id: uuid.UUID | None = None
    topic_id: str | None = Field(None, min_length=1, max_length=128)


class ChatSource(ResponseModel):
    node_id: str
    title: str
    topic_id: str
    snippet: str


class ModelsUsed(ResponseModel):
    """What answered this turn: the model version, each model or its fallback, the LLM."""

    models: str | None = Field(description="published model version in service (null: none)")
    encoder: str | None = Field(description="null when the encoder was unavailable (full-text retrieval)")
    intent: str = Field(
        description="intent-head@<version> (read in the encoder's pass), intent-model@<version> or keyword-rules"
    )
    confusion: str = Field(description="confusion-model@<version> or confusion-heuristic")
    llm: str = Field(description="<provider>/<model>")


class ChatReply(ResponseBody):
    """A tutor turn. Streamed (Accept: text/event-stream), the same fields arrive as the
    `metadata` event (everything before `reply`) and the `final` event (all of them)."""

    intent: str
    confidence: float
    is_confused: bool
    needs_rephrase: bool
    rephrase_hint: str | None
    mastery: float | None = Field(description="P(mastery) of the turn's topic; null without a topic")
    suggestion: str | None
    sources: list[ChatSource]
    session_id: uuid.UUID
    topic_id: str | None
    reply: str
    interaction_id: uuid.UUID | None = Field(description="null when the turn could not be logged")
    provider: str
    llm: LlmUsage
    model_versions: ModelsUsed
    timings_ms: dict[str, float] = Field(description="milliseconds per pipeline step, and total")
    degraded: list[str] = Field(description="the dependencies that were down and replaced by a fallback")


@router.post("/", body=ChatRequest, response=ChatReply)
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


class ContentSource(ResponseModel):
    node_id: str
    title: str


class _ContentPlan(ResponseBody):
    topic_id: str
    topic_title: str
    level: Level
    style: Style | None
    mastery: float
    focus: str | None
    sources: list[ContentSource]
    provider: str
    llm: LlmUsage


class Explanation(_ContentPlan):
    text: str


class QuizContent(_ContentPlan):
    quiz: Quiz
    source: Literal["generated", "question_bank"] = Field(description="written by an LLM, or drawn from the bank")


class Content(RootModel[Explanation | QuizContent]):
    """An explanation (kind=explanation; streamed on request as metadata, delta..., final)
    or a quiz (kind=quiz, validated JSON)."""


@router.post("/content", body=ContentBody, response=Content)
@rate_limited("content")
def content(req: Request):
    """Personalized explanation (streamed on request) or quiz (validated JSON) for a topic."""
    the_plan = plan_content(get_engine(), req.user, ContentRequest(**req.body.model_dump()))
    if req.body.kind == "explanation" and req.wants_event_stream():
        return sse_response(explanation_events(get_engine(), the_plan, req.request_id), req.request_id)
    return write_content(get_engine(), req.body.kind, the_plan, req.request_id)


class EmbeddingsIn(StrictModel):
    texts: list[Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]] = Field(min_length=1, max_length=MAX_TEXTS)


class Embeddings(ResponseBody):
    model: str = Field(description="the encoder version the vectors belong to (compare before mixing)")
    dim: int
    count: int
    vectors: list[list[float]] = Field(description="unit vectors, one per text, in order")


@router.post("/embeddings", body=EmbeddingsIn, response=Embeddings)
def embeddings(req: Request) -> dict:
    """Vectors and the encoder version, for other back-end services (admins, service accounts)."""
    return embed_for_service(req.user, req.body.texts)


class TopicOut(ResponseModel):
    id: str
    course_id: str
    course_title: str
    title: str
    description: str | None
    prerequisites: list[str]
    nodes: int = Field(description="knowledge nodes (course material excerpts) of the topic")
    questions: int


class Topics(ResponseBody):
    topics: list[TopicOut]


@router.get("/topics", response=Topics)
def topics(req: Request) -> dict:
    with get_engine().connect() as conn:
        return {"topics": list_topics(conn)}


class SessionOut(ResponseModel):
    id: uuid.UUID
    topic_id: str | None
    title: str | None
    created_at: datetime
    last_message_at: datetime | None
    messages: int


class Sessions(ResponseBody):
    user_id: str
    sessions: list[SessionOut]


@router.get("/sessions", query=UserQuery, response=Sessions)
def sessions(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "sessions": list_sessions(conn, user_id, req.query.limit)}


class MessageOut(ResponseModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    interaction_id: uuid.UUID | None
    created_at: datetime


class Messages(ResponseBody):
    session_id: uuid.UUID
    messages: list[MessageOut]


@router.get("/sessions/<uuid:session_id>/messages", query=MessagesQuery, response=Messages)
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
