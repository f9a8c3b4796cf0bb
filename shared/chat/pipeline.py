"""The tutor pipeline: encode -> intent -> confusion -> mastery -> retrieval -> prompt
-> generation -> one interaction-log row.

Each stage is timed, and each has a fallback: no encoder means full-text
retrieval and the confusion heuristic; no intent model means keyword rules; no
database means an answer without history, mastery or sources (and no log row);
no LLM provider means the offline composer. The response says which of them
answered, in `model_versions`, `provider` and `degraded`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa

from shared.chat import conversation, grounding
from shared.chat.fallbacks import heuristic_confusion, keyword_intent
from shared.chat.prompt_book import Behaviour, PromptSpec, adapt, spec_for, system_prompt
from shared.curriculum import TopicNotFoundError
from shared.errors import DomainError
from shared.identity import Principal
from shared.intent_thresholds import HUMAN_REVIEW_BELOW, REPHRASE_BELOW
from shared.llm.types import Generation, Grounding, Message, Prompt, Source, StreamReset
from shared.logs import log_event
from shared.mastery.store import StudentOnTopic, student_on_topic
from shared.models.confusion import MessageTiming
from shared.models.intent import IntentPrediction
from shared.personalisation import Profile
from shared.rag.retrieval import (
    RetrievalParams,
    RetrievedNode,
    full_text_candidates,
    fused_search,
    of_kinds,
    query_terms,
)
from shared.users import ensure_user

log = logging.getLogger(__name__)

HISTORY = 2  # previous user messages fed to confusion (plus the current one: 3)
SNIPPET_CHARS = 280


@dataclass(frozen=True)
class ChatInput:
    message: str
    session_id: uuid.UUID | None = None
    topic_id: str | None = None


@dataclass
class Turn:
    """Everything decided before the LLM writes; `finish` turns it into the response."""

    request_id: str
    user: Principal
    message: str
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    query_vector: np.ndarray | None = None
    intent: str = "concept_explanation"
    confidence: float = 0.0
    probs: dict[str, float] = field(default_factory=dict)
    intent_source: str = "keyword-rules"
    session_id: uuid.UUID | None = None
    topic_id: str | None = None
    topic_title: str | None = None
    topic_reason: str = "none"  # how the topic was decided (see shared.chat.grounding)
    known_words: float = 1.0  # share of the message's words the intent model can read
    rephrase_reason: str | None = None  # unreadable | out_of_domain | unsure (when confidence is low)
    confusion: float = 0.0
    confusion_threshold: float = 0.5
    confusion_source: str = "confusion-heuristic"
    mastery: float | None = None
    profile: Profile | None = None
    mastery_measured: bool = False
    sources: list[RetrievedNode] = field(default_factory=list)
    behaviour: Behaviour = field(default_factory=lambda: Behaviour((), None))
    spec: PromptSpec | None = None
    prompt: Prompt | None = None
    model_version: str | None = None

    @property
    def is_confused(self) -> bool:
        return self.confusion >= self.confusion_threshold

    @property
    def needs_rephrase(self) -> bool:
        return self.confidence < REPHRASE_BELOW

    @property
    def readable(self) -> bool:
        """Enough of the message's words are ones the intent model can read."""
        return self.known_words >= grounding.KNOWN_WORD_SHARE

    def source_dicts(self, with_content: bool = False) -> list[dict[str, Any]]:
        out = []
        for n in self.sources:
            item = {
                "node_id": n.id,
                "title": n.title,
                "topic_id": n.topic_id,
                "snippet": n.snippet(SNIPPET_CHARS),
                "score": round(n.score, 5),
            }
            if with_content:
                item["content"] = n.content
            out.append(item)
        return out


class _Stage:
    """Times one stage into turn.timings (milliseconds)."""

    def __init__(self, turn: Turn, name: str) -> None:
        self.turn, self.name = turn, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.turn.timings[self.name] = round((time.perf_counter() - self.t0) * 1000, 3)


_ASYNC_COMMIT = sa.text("SELECT set_config('synchronous_commit', 'off', true)")


class _TurnTransaction:
    """The turn's one connection and transaction, opened by the session stage; `conn` is
    None when the database is unavailable (the turn then answers without it).

    Its commits do not wait for the WAL flush (`synchronous_commit = off`, this
    transaction only): what a turn writes before the LLM is a new session row or the
    session's topic, and a commit that waits costs ~4 ms against ~0.3 ms (docs/chat.md).
    A database server crash can lose the last fraction of a second of such writes, never
    corrupt them; the interaction log after the reply is committed durably."""

    def __init__(self, engine: Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self.conn: sa.Connection | None = None
        self._trans: sa.RootTransaction | None = None

    def begin(self) -> sa.Connection:
        self.conn = self._engine().connect()
        self._begin()
        return self.conn

    def _begin(self) -> None:
        assert self.conn is not None
        self._trans = self.conn.begin()
        self.conn.execute(_ASYNC_COMMIT)

    def commit(self) -> None:
        if self.conn is None or self._trans is None:
            return
        try:
            self._trans.commit()
        finally:
            self._close()

    def checkpoint(self) -> None:
        """Commit what was written so far and go on in a new transaction."""
        assert self.conn is not None and self._trans is not None
        self._trans.commit()
        self._begin()

    def restart(self) -> None:
        """After a failed statement: roll back (the transaction is unusable) and begin anew;
        on a broken connection, give it up (`conn` becomes None)."""
        if self.conn is None:
            return
        try:
            if self._trans is not None and self._trans.is_active:
                self._trans.rollback()
            self._begin()
        except Exception:
            log.warning("could not restart the turn's transaction", exc_info=True)
            self._close()

    def rollback(self) -> None:
        if self.conn is None:
            return
        try:
            if self._trans is not None and self._trans.is_active:
                self._trans.rollback()
        except Exception:  # a broken connection is discarded by close()
            log.warning("rollback failed", exc_info=True)
        finally:
            self._close()

    def _close(self) -> None:
        conn, self.conn, self._trans = self.conn, None, None
        if conn is not None:
            conn.close()


@dataclass
class _IntentReading:
    """The intent model's reading of a message (or the keyword rules', `degraded`)."""

    prediction: IntentPrediction | None = None
    source: str = "keyword-rules"
    known_words: float = 1.0
    degraded: bool = False
    ms: float = 0.0

    def apply(self, turn: Turn) -> None:
        assert self.prediction is not None
        turn.intent, turn.confidence, turn.probs = (
            self.prediction.label,
            self.prediction.confidence,
            self.prediction.probs,
        )
        turn.intent_source, turn.known_words = self.source, self.known_words
        turn.timings["intent"] = self.ms
        if self.degraded:
            turn.degraded.append("intent")


@dataclass
class _ConfusionReading:
    """The confusion model's score of the last messages (or the heuristic's, `degraded`)."""

    score: float = 0.0
    threshold: float = 0.5
    source: str = "confusion-heuristic"
    degraded: bool = False
    ms: float = 0.0

    def apply(self, turn: Turn) -> None:
        turn.confusion, turn.confusion_threshold, turn.confusion_source = self.score, self.threshold, self.source
        turn.timings["confusion"] = self.ms
        if self.degraded:
            turn.degraded.append("confusion")


@dataclass
class _VectorReading:
    """The encoder's vector of a message (None, `degraded`, when the encoder failed)."""

    vector: np.ndarray | None = None
    degraded: bool = False
    ms: float = 0.0

    def apply(self, turn: Turn) -> None:
        turn.query_vector = self.vector
        turn.timings["encode"] = self.ms
        if self.degraded:
            turn.degraded.append("encoder")


def _request_threads() -> int:
    """How many requests the function serves at once: functions-framework's gunicorn runs
    THREADS request threads (default four per CPU), so the same formula sizes the readers."""
    return max(1, int(os.environ.get("THREADS", (os.cpu_count() or 1) * 4)))


# The full-text side is read before the intent, for every node kind; the turn keeps the
# kinds the intent wants. As many candidates as the widest intent asks for.
EARLY_TEXT_CANDIDATES = 60
EARLY_TEXT_K = 8

# One reader thread per request thread, so no turn waits for another's models; threads
# start on first use (none at import, nothing added to the cold start).
_READERS = ThreadPoolExecutor(max_workers=_request_threads(), thread_name_prefix="chat-models")

_T = TypeVar("_T")


def _in_reader(fn: Callable[..., _T], *args: Any) -> Future[_T]:
    """Run `fn(*args)` in a reader thread, in a copy of the request's context (request id,
    trace), so its log lines belong to the turn."""
    return _READERS.submit(contextvars.copy_context().run, fn, *args)


class _MessageReader:
    """The models read the message in a worker thread while the request thread works in
    the database: ONNX Runtime and the database socket both release the GIL, so the
    transformer pass runs while the Postgres backend works (docs/chat.md).

    When the version has the encoder with the intent head (`encoder_intent`), one pass
    yields both the intent and the vector. Otherwise the intent model runs first (the
    retrieval's kinds wait for it), then the encoder. Each part degrades on its own and
    never raises. The worker runs in a copy of the request's context (request id, trace)."""

    def __init__(self, pipeline: ChatPipeline, message: str, registry: Any, model_version: str | None) -> None:
        self.intent: Future[_IntentReading] = Future()
        self.vector: Future[_VectorReading] = _in_reader(self._run, pipeline, message, registry, model_version)

    def _run(self, pipeline: ChatPipeline, message: str, registry: Any, model_version: str | None) -> _VectorReading:
        one_pass = pipeline._read_both(message, registry, model_version)
        if one_pass is not None:
            self.intent.set_result(one_pass[0])
            return one_pass[1]
        try:
            self.intent.set_result(pipeline._read_intent(message, registry, model_version))
        except BaseException as exc:  # never leave the request thread waiting
            self.intent.set_exception(exc)
            raise
        return pipeline._read_vector(message)


@dataclass(frozen=True)
class _TextSide:
    """What the first half of retrieval found: the full-text ids, best first, and the
    topics the message names, with the parameters the second half uses."""

    params: RetrievalParams
    ids: list[str]
    named: dict[str, grounding.NamedTopic]


class ChatPipeline:
    """One per process; dependencies are looked up lazily so tests can swap them."""

    def __init__(
        self,
        *,
        engine: Callable[[], sa.Engine] | None = None,
        registry: Callable[[], Any] | None = None,
        embeddings: Callable[[], Any] | None = None,
        router: Callable[[], Any] | None = None,
    ) -> None:
        from shared.db.engine import get_engine
        from shared.embeddings.service import get_embedding_service
        from shared.llm.router import get_router
        from shared.models.registry import get_registry

        self._engine = engine or get_engine
        self._registry = registry or get_registry
        self._embeddings = embeddings or get_embedding_service
        self._router = router or get_router

    # -- before the LLM ----------------------------------------------------------------
    def prepare(self, user: Principal, inp: ChatInput, request_id: str) -> Turn:
        """Everything before the LLM. The models read the message in a worker thread
        (`_MessageReader`) while this thread reads the session and the topics the message
        names, then the full-text side once the intent is known, then the vector side once
        the encoder's vector is, while the confusion model scores the last messages in a
        reader thread. The database stages (session, retrieval, mastery) share
        one connection and one transaction: one pool checkout and one commit per turn
        instead of three. A turn that may have written in the session stage (a new session,
        a requested topic) commits that first, so a failed retrieval (whose transaction is
        then rolled back and restarted) costs the sources only, never the session the turn
        belongs to; savepoints would cost four statements on every turn instead."""
        turn = Turn(request_id=request_id, user=user, message=inp.message, started=time.perf_counter())
        registry = self._registry()
        turn.model_version = _safe(lambda: registry.version)
        reader = _MessageReader(self, turn.message, registry, turn.model_version)
        db = _TurnTransaction(self._engine)
        try:
            try:
                with _Stage(turn, "session"):
                    history = self._session(turn, inp, db)
                    if db.conn is not None and (inp.session_id is None or inp.topic_id is not None):
                        self._checkpoint(turn, inp, db)
                with _Stage(turn, "named_topics"):
                    named = self._named_topics(turn, db, requested_topic=inp.topic_id)
                with _Stage(turn, "full_text"):
                    text_ids = self._search_text(turn, db, named, requested_topic=inp.topic_id)
            finally:
                with _Stage(turn, "intent_wait"):
                    reader.intent.result().apply(turn)  # never raises: the model degrades on its own
            text_side = self._text_side(turn, named, text_ids, requested_topic=inp.topic_id)
            early = self._student_while_waiting(turn, db, reader.vector)
            with _Stage(turn, "encode_wait"):
                reader.vector.result().apply(turn)
            # Confusion needs the vector, retrieval does not need confusion: the model
            # scores the messages in a reader thread while the fused statement runs.
            confusion = _in_reader(
                self._read_confusion, turn.message, turn.query_vector, registry, turn.model_version, history
            )
            with _Stage(turn, "retrieval"):
                self._retrieve(turn, db, text_side, requested_topic=inp.topic_id)
            with _Stage(turn, "confusion_wait"):
                confusion.result().apply(turn)  # never raises: the heuristic answers instead
            with _Stage(turn, "mastery"):
                self._mastery(turn, db, early)
                self._commit(turn, db)
        except BaseException:
            db.rollback()
            raise
        with _Stage(turn, "prompt"):
            self._build_prompt(turn)
        turn.timings["pre_llm_total"] = round((time.perf_counter() - turn.started) * 1000, 3)
        return turn

    @staticmethod
    def _checkpoint(turn: Turn, inp: ChatInput, db: _TurnTransaction) -> None:
        """Commit a new session (or topic) before retrieval; if that fails the turn goes on
        without the database, as when the session stage itself fails."""
        try:
            db.checkpoint()
        except Exception:
            log.error("could not commit the chat session", exc_info=True)
            db.rollback()
            turn.degraded.append("database")
            turn.session_id = inp.session_id  # a new session was rolled back with the rest

    @staticmethod
    def _commit(turn: Turn, db: _TurnTransaction) -> None:
        """The turn's one commit: a write (and a WAL flush) only when a session is new or
        its topic changed; reading turns commit nothing."""
        try:
            db.commit()
        except Exception:
            log.error("could not commit the chat turn", exc_info=True)
            turn.degraded.append("database")

    def _read_intent(self, message: str, registry: Any, model_version: str | None) -> _IntentReading:
        t0 = time.perf_counter()
        reading = _IntentReading()
        try:
            model = registry.get("intent")
            reading.prediction = model.predict([message])[0]
            reading.source = f"intent-model@{model_version}"
            known = _safe(lambda: float(model.known_word_share(message)))
            reading.known_words = 1.0 if known is None else known
        except Exception:
            log.warning("intent model unavailable; using keyword rules", exc_info=True)
            reading.prediction = keyword_intent(message)
            reading.degraded = True
        reading.ms = round((time.perf_counter() - t0) * 1000, 3)
        return reading

    @staticmethod
    def _read_both(
        message: str, registry: Any, model_version: str | None
    ) -> tuple[_IntentReading, _VectorReading] | None:
        """The intent and the vector from one pass of `encoder_intent`; None when the
        version has none or it fails: then the intent model reads the message (the keyword
        rules when the registry left it out, `SUPERSEDED_BY`), and the encoder."""
        from shared.models.registry import ModelUnavailableError

        t0 = time.perf_counter()
        try:
            model = registry.get("encoder_intent")
        except ModelUnavailableError:
            return None  # not in this version (its head did not pass the build's gate), or not served
        try:
            vector, prediction = model.read(message)
            known = _safe(lambda: float(model.known_word_share(message)))
        except Exception:
            log.warning("encoder with the intent head failed; reading with the fallbacks", exc_info=True)
            return None
        ms = round((time.perf_counter() - t0) * 1000, 3)
        intent = _IntentReading(
            prediction=prediction,
            source=f"intent-head@{model_version}",
            known_words=1.0 if known is None else known,
            ms=ms,
        )
        return intent, _VectorReading(vector=vector, ms=ms)

    def _read_vector(self, message: str) -> _VectorReading:
        t0 = time.perf_counter()
        reading = _VectorReading()
        try:
            reading.vector = self._embeddings().embed_one(message)
        except Exception:
            log.warning("encoder unavailable; retrieval falls back to full text", exc_info=True)
            reading.degraded = True
        reading.ms = round((time.perf_counter() - t0) * 1000, 3)
        return reading

    def _session(self, turn: Turn, inp: ChatInput, db: _TurnTransaction) -> list[conversation.PastMessage]:
        try:
            conn = db.begin()
            ensure_user(conn, turn.user)
            if inp.topic_id is not None:
                turn.topic_title = conversation.topic_title(conn, inp.topic_id)
                if turn.topic_title is None:
                    raise TopicNotFoundError("No such topic.")
            view = conversation.open_session(conn, turn.user, inp.session_id, inp.topic_id, turn.message, HISTORY)
            turn.session_id, turn.topic_id = view.session_id, view.topic_id
            # The session's topic title comes with the session (chat_sessions.topic_id
            # references topics); a requested topic's was read above.
            turn.topic_title = turn.topic_title or view.topic_title
            return view.history
        except DomainError:
            raise
        except Exception:
            log.error("database unavailable for the chat session", exc_info=True)
            db.rollback()
            turn.degraded.append("database")
            turn.topic_id = inp.topic_id
            return []

    @staticmethod
    def _read_confusion(
        message: str,
        vector: np.ndarray | None,
        registry: Any,
        model_version: str | None,
        history: list[conversation.PastMessage],
    ) -> _ConfusionReading:
        """Score the last messages (the history and this one) with the confusion model;
        the heuristic answers when the model or an embedding of the window is missing."""
        t0 = time.perf_counter()
        reading = _ConfusionReading()
        texts = [m.content for m in history] + [message]
        now = dt.datetime.now(dt.UTC)
        times = [m.created_at for m in history] + [now]
        timing = [
            MessageTiming(None if i == 0 else max((times[i] - times[i - 1]).total_seconds(), 0.0), len(texts[i]))
            for i in range(len(texts))
        ]
        vectors = [m.embedding for m in history] + [vector]
        usable = vector is not None and all(v is not None for v in vectors)
        stacked = np.stack([v for v in vectors if v is not None]).astype(np.float32) if usable else None
        try:
            if stacked is None:
                raise LookupError("no embeddings for the confusion window")
            model = registry.get("confusion")
            reading.score = float(model.predict(stacked, timing))
            reading.threshold = float(getattr(model, "threshold", 0.5))
            reading.source = f"confusion-model@{model_version}"
        except Exception:
            log.info("confusion model not used; heuristic answers", exc_info=True)
            reading.score = heuristic_confusion(texts, stacked)
            reading.degraded = True
        reading.ms = round((time.perf_counter() - t0) * 1000, 3)
        return reading

    def _named_topics(
        self, turn: Turn, db: _TurnTransaction, requested_topic: str | None
    ) -> dict[str, grounding.NamedTopic] | None:
        """The course topics the message names, which retrieval weighs against its hits
        (none asked for when the student chose the topic). It needs the message only, so
        it is read while the intent model still works; None when it cannot be read (the
        turn then answers without sources, as when retrieval fails)."""
        if db.conn is None:
            return None
        if requested_topic:
            return {}
        try:
            # Every intent's retrieval reads at most the default number of query terms.
            terms = " ".join(query_terms(turn.message, RetrievalParams.max_query_terms))
            return grounding.named_topics(db.conn, terms)
        except Exception:
            log.error("topic naming failed; answering without sources", exc_info=True)
            self._retrieval_failed(turn, db)
            return None

    def _search_text(
        self,
        turn: Turn,
        db: _TurnTransaction,
        named: dict[str, grounding.NamedTopic] | None,
        requested_topic: str | None,
    ) -> list[tuple[str, str]] | None:
        """The full-text side's ranked (id, kind) pairs, every node kind, read before the
        intent is known (while the model still reads the message); `_text_side` keeps the
        kinds the intent wants. None when there is nothing to search with (no database,
        the topics unreadable, or this statement failed)."""
        conn = db.conn
        if conn is None or named is None:
            return None
        wide = RetrievalParams(
            k=EARLY_TEXT_K, candidates=EARLY_TEXT_CANDIDATES, topic_ids=[requested_topic] if requested_topic else None
        )
        try:
            return full_text_candidates(conn, turn.message, wide)
        except Exception:
            log.error("full-text search failed; answering without sources", exc_info=True)
            self._retrieval_failed(turn, db)
            return None

    @staticmethod
    def _text_side(
        turn: Turn,
        named: dict[str, grounding.NamedTopic] | None,
        text_ids: list[tuple[str, str]] | None,
        requested_topic: str | None,
    ) -> _TextSide | None:
        """What the intent asks retrieval for, with the full-text ids read before it. None
        when there is nothing to retrieve."""
        turn.spec = spec_for(turn.intent, [requested_topic] if requested_topic else None)
        probe = turn.intent == "off_topic" or not turn.readable
        if requested_topic:
            turn.topic_reason = "requested"
        if text_ids is None or named is None or (turn.spec.retrieval.k == 0 and not probe):
            return None
        params = turn.spec.retrieval
        # Wide enough to see the session topic and its rivals in one statement.
        wide = replace(params, k=max(2 * params.k, 8), kinds=None if turn.spec.retrieval.k == 0 else params.kinds)
        return _TextSide(wide, of_kinds(text_ids, wide.kinds)[: wide.candidates], named)

    def _retrieve(
        self, turn: Turn, db: _TurnTransaction, text: _TextSide | None, requested_topic: str | None = None
    ) -> None:
        """Retrieve, check the message is about the course, decide the turn's topic (sticky,
        see `shared.chat.grounding`) and keep the sources relevant to the question.

        The intent model is confident on what it has never seen, so its decision is checked
        against the course (thresholds calibrated on CLINC150, see `grounding`): a bare
        course term it calls off_topic ("force") is a question about the course; a
        message it cannot read ("asdf qwer zxcv"), or a first question that neither names
        nor resembles any course material, gets a low confidence and a rephrase request.
        """
        conn = db.conn
        if text is None or conn is None or turn.spec is None:
            return
        named = text.named
        try:
            hits = fused_search(conn, text.ids, turn.query_vector, text.params)
            similar = grounding.grounded(hits)
            about_course = similar or any(n.fully for n in named.values())
            if not turn.readable and not about_course:
                self._doubt(turn, hits, "unreadable")
                return
            if turn.intent == "off_topic":
                if not similar:
                    return
                self._about_the_course(turn)
                hits = [h for h in hits if turn.spec.retrieval.kinds is None or h.kind in turn.spec.retrieval.kinds]
            elif turn.spec.retrieval.k == 0:
                return
            elif (
                turn.topic_id is None
                and not about_course
                and turn.intent in grounding.TUTORING_INTENTS
                and grounding.measurable(hits, turn.query_vector is not None)
            ):
                self._doubt(turn, hits, "out_of_domain")
            if requested_topic:
                decision = grounding.TopicDecision(requested_topic, "requested")
            else:
                decision = grounding.choose_topic(turn.topic_id, hits, named)
            turn.topic_reason = decision.reason
            if decision.topic_id != turn.topic_id:
                turn.topic_id = decision.topic_id
                turn.topic_title = _title_of(decision.topic_id, hits, conn)
                if turn.session_id is not None and decision.topic_id is not None:
                    grounding.save_topic(conn, turn.session_id, decision.topic_id)
            turn.sources = grounding.relevant_sources(hits, turn.topic_id, turn.spec.retrieval.k)
        except Exception:
            log.error("retrieval failed; answering without sources", exc_info=True)
            self._retrieval_failed(turn, db)

    @staticmethod
    def _retrieval_failed(turn: Turn, db: _TurnTransaction) -> None:
        turn.degraded.append("retrieval")
        db.restart()

    def _about_the_course(self, turn: Turn) -> None:
        """The intent model said off_topic, but the message is as close to the course material
        as course questions are ("force"): answer it as a question about that material, an
        explanation. Not the model's runner-up: for a bare term that is noise (the intent
        model's was concept_explanation for "force" and practice_quiz for "loops", the
        intent head's practice_quiz for both). The label is a rule's, not the model's, so
        the confidence is the lowest the product still acts on (answered, and queued for a
        human label)."""
        label = "concept_explanation"
        log.info("off_topic overruled: the message is grounded in the course (now %s)", label)
        turn.intent = label
        turn.confidence = min(turn.confidence, REPHRASE_BELOW)
        turn.intent_source = f"{turn.intent_source}+grounding"
        turn.spec = spec_for(label, None)

    @staticmethod
    def _doubt(turn: Turn, hits: list[RetrievedNode], reason: str) -> None:
        """The model's confidence does not hold for this message: it becomes the message's
        similarity to the course (below the calibrated grounding level, so below the
        rephrase threshold), and the student is asked to rephrase."""
        best = max((h.similarity for h in hits if h.similarity is not None), default=0.0)
        turn.confidence = max(0.0, min(turn.confidence, best, REPHRASE_BELOW - 0.01))
        turn.rephrase_reason = reason
        log.info("intent confidence lowered (%s)", reason)

    @staticmethod
    def _student_while_waiting(
        turn: Turn, db: _TurnTransaction, vector: Future[_VectorReading]
    ) -> tuple[str, StudentOnTopic] | None:
        """Mastery needs the turn's topic, which retrieval decides after the vector; most
        turns keep the session's topic, so while the encoder still works the student is
        read for that topic and `_mastery` reuses it if the topic stays (one round trip
        off the critical path). Nothing is read when there is no wait to fill."""
        if db.conn is None or turn.topic_id is None or vector.done():
            return None
        try:
            with _Stage(turn, "mastery_early"):
                return turn.topic_id, student_on_topic(db.conn, turn.user.uid, turn.topic_id)
        except Exception:
            log.warning("could not read the student early; mastery reads it after retrieval", exc_info=True)
            db.restart()
            return None

    def _mastery(self, turn: Turn, db: _TurnTransaction, early: tuple[str, StudentOnTopic] | None = None) -> None:
        """The student's mastery of the turn's topic, and their profile (level, style, grade):
        read while the encoder worked (`_student_while_waiting`) when the topic stayed."""
        if db.conn is None:
            return
        try:
            if early is not None and early[0] == turn.topic_id:
                student = early[1]
            else:
                student = student_on_topic(db.conn, turn.user.uid, turn.topic_id)
            turn.profile, turn.mastery, turn.mastery_measured = student.profile, student.mastery, student.measured
        except Exception:
            log.error("mastery unavailable", exc_info=True)
            turn.degraded.append("mastery")
            db.restart()  # what retrieval wrote (a new topic) is lost; the session is committed

    def _build_prompt(self, turn: Turn) -> None:
        assert turn.spec is not None
        turn.behaviour = adapt(
            turn.is_confused, turn.mastery, turn.topic_title, turn.profile, mastery_measured=turn.mastery_measured
        )
        sources = turn.source_dicts(with_content=True)
        turn.prompt = Prompt(
            system=system_prompt(turn.spec, turn.behaviour, sources),
            messages=(Message("user", turn.message),),
            grounding=Grounding(
                intent=turn.intent,
                query=turn.message,
                sources=tuple(
                    Source(s["node_id"], s["title"], s["content"], s["topic_id"], s["score"]) for s in sources
                ),
                is_confused=turn.is_confused,
                suggestion=turn.behaviour.suggestion,
                mastery=turn.mastery,
                topic_title=turn.topic_title,
            ),
            user_id=turn.user.uid,
        )

    # -- the LLM and after -----------------------------------------------------------------
    def metadata(self, turn: Turn) -> dict[str, Any]:
        """What the client may show before the reply is written."""
        return {
            "intent": turn.intent,
            "confidence": round(turn.confidence, 4),
            "is_confused": turn.is_confused,
            "needs_rephrase": turn.needs_rephrase,
            "rephrase_hint": rephrase_hint(turn) if turn.needs_rephrase else None,
            "mastery": None if turn.mastery is None else round(turn.mastery, 4),
            "suggestion": turn.behaviour.suggestion,
            "sources": [{k: v for k, v in s.items() if k != "score"} for s in turn.source_dicts()],
            "session_id": turn.session_id,
            "topic_id": turn.topic_id,
            "request_id": turn.request_id,
        }

    def finish(self, turn: Turn, generation: Generation) -> dict[str, Any]:
        turn.timings["total"] = round((time.perf_counter() - turn.started) * 1000, 3)
        versions = {
            "models": turn.model_version,
            "encoder": _encoder_name(self._embeddings) if "encoder" not in turn.degraded else None,
            "intent": turn.intent_source,
            "confusion": turn.confusion_source,
            "llm": f"{generation.provider}/{generation.model}",
        }
        log_event(
            log,
            "chat_turn",
            status="degraded" if turn.degraded else "ok",
            latency_ms=turn.timings["total"],
            provider=generation.provider,
            model=generation.model,
            model_version=turn.model_version,
        )
        interaction_id = None
        if "database" not in turn.degraded:
            with _Stage(turn, "log"):
                interaction_id = self._log(turn, generation, versions)
        return {
            **self.metadata(turn),
            "reply": generation.text,
            "interaction_id": interaction_id,
            "provider": generation.provider,
            "llm": generation.usage(),
            "model_versions": versions,
            "timings_ms": turn.timings,
            "degraded": turn.degraded,
        }

    def _log(self, turn: Turn, generation: Generation, versions: dict[str, Any]) -> uuid.UUID | None:
        from shared.llm.generation_log import log_generation

        try:
            with self._engine().begin() as conn:
                interaction_id = conversation.log_interaction(
                    conn,
                    {
                        "request_id": turn.request_id,
                        "user_id": turn.user.uid,
                        "session_id": turn.session_id,
                        "kind": "chat",
                        "query": turn.message,
                        "topic_id": turn.topic_id,
                        "intent": turn.intent,
                        "intent_probs": turn.probs,
                        "intent_confidence": turn.confidence,
                        "intent_source": turn.intent_source,
                        "confusion_score": turn.confusion,
                        "is_confused": turn.is_confused,
                        "mastery": turn.mastery,
                        "retrieved_node_ids": [n.id for n in turn.sources],
                        "prompt_key": turn.spec.intent if turn.spec else None,
                        "provider": generation.provider,
                        "llm_model": generation.model,
                        "model_versions": versions,
                        "reply": generation.text,
                        "tokens_in": generation.tokens_in,
                        "tokens_out": generation.tokens_out,
                        "latency_ms": turn.timings.get("total"),
                        "timings_ms": turn.timings,
                        "needs_review": turn.confidence < HUMAN_REVIEW_BELOW,
                    },
                )
                if turn.session_id is not None:
                    conversation.record_turn(
                        conn, turn.session_id, turn.message, turn.query_vector, generation.text, interaction_id
                    )
                log_generation(
                    conn, generation, turn.request_id, None if interaction_id is None else str(interaction_id)
                )
                return interaction_id
        except Exception:
            log.error("could not log the interaction", exc_info=True)
            turn.degraded.append("logging")
            return None

    def run(self, user: Principal, inp: ChatInput, request_id: str) -> dict[str, Any]:
        turn = self.prepare(user, inp, request_id)
        assert turn.prompt is not None and turn.spec is not None
        t0 = time.perf_counter()
        generation = self._router().generate(turn.spec.task, turn.prompt)
        turn.timings["generate"] = round((time.perf_counter() - t0) * 1000, 3)
        return self.finish(turn, generation)

    def stream(self, user: Principal, inp: ChatInput, request_id: str) -> Iterator[tuple[str, Any]]:
        """(event, data) pairs: metadata, then deltas (or a reset), then the final contract.

        Not a generator itself: everything that can refuse the request (an unknown topic,
        another student's session) runs here, before the response's first byte, so the
        caller gets the proper 4xx status. Only failures after that become SSE errors.
        """
        turn = self.prepare(user, inp, request_id)
        return self._events(turn)

    def _events(self, turn: Turn) -> Iterator[tuple[str, Any]]:
        assert turn.prompt is not None and turn.spec is not None
        yield "metadata", self.metadata(turn)
        t0 = time.perf_counter()
        for item in self._router().stream(turn.spec.task, turn.prompt):
            if isinstance(item, str):
                yield "delta", {"text": item}
            elif isinstance(item, StreamReset):
                yield "reset", {"failed_provider": item.failed_provider}
            else:
                turn.timings["generate"] = round((time.perf_counter() - t0) * 1000, 3)
                yield "final", self.finish(turn, item)


_REPHRASE_HINTS = {
    "unreadable": "I couldn't read that message. Could you write your question again in a full sentence?",
    "out_of_domain": (
        "I'm not sure that is about your course. Could you rephrase it, or name the topic it is about{topic}?"
    ),
    "unsure": (
        'I\'m not sure what you would like me to do. Could you rephrase it, for example "explain ...", '
        '"why does my code ..." or "quiz me on ..."{topic}?'
    ),
}


def _title_of(topic_id: str | None, hits: list[RetrievedNode], conn: sa.Connection) -> str | None:
    """The title of the topic the turn moved to: the hits carry their topics' titles
    (one round trip fewer); a topic only named by the message is read."""
    if topic_id is None:
        return None
    known = next((h.topic_title for h in hits if h.topic_id == topic_id and h.topic_title is not None), None)
    return known if known is not None else conversation.topic_title(conn, topic_id)


def rephrase_hint(turn: Turn) -> str:
    """What the client shows when `needs_rephrase` is set: why, and how to ask instead."""
    topic = f" (we were on {turn.topic_title})" if turn.topic_title else ""
    return _REPHRASE_HINTS[turn.rephrase_reason or "unsure"].format(topic=topic)


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


def _encoder_name(embeddings: Callable[[], Any]) -> str | None:
    return _safe(lambda: embeddings().model_name)
