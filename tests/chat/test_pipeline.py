"""The chat pipeline's decisions and fallbacks, with models pinned by stand-ins."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from shared.chat.pipeline import ChatInput, ChatPipeline
from shared.db import get_engine
from shared.errors import DomainError
from shared.http.auth import Principal
from shared.llm.router import get_router
from shared.personalisation import Profile

ALICE = Principal("alice")


@contextlib.contextmanager
def recorded_statements(engine):
    """The statements sent through `engine` inside the block (their first 60 characters)."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split())[:60])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def pipeline(registry, encoder, engine=get_engine):
    return ChatPipeline(engine=engine, registry=lambda: registry, embeddings=lambda: encoder, router=get_router)


def test_full_turn_with_models_logs_everything(course, stubs):
    confusion = stubs["FixedConfusion"](0.2)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("debugging_help", 0.91), confusion=confusion)
    out = pipeline(reg, stubs["HashEncoder"]()).run(
        ALICE, ChatInput("I get ZeroDivisionError when I divide", topic_id="py-debugging"), "req-1"
    )
    assert out["intent"] == "debugging_help" and out["confidence"] == pytest.approx(0.91)
    assert out["needs_rephrase"] is False and out["is_confused"] is False
    assert out["provider"] == "offline" and out["reply"]
    assert out["model_versions"]["intent"] == "intent-model@vtest"
    assert out["model_versions"]["confusion"] == "confusion-model@vtest"
    assert {s["node_id"] for s in out["sources"]} and all(s["topic_id"] == "py-debugging" for s in out["sources"])
    assert out["mastery"] == pytest.approx(0.2)  # the topic prior: no answers yet
    assert {"encode", "intent", "confusion", "retrieval", "mastery", "prompt", "generate", "total"} <= set(
        out["timings_ms"]
    )
    with course.connect() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM interactions WHERE id = :i"), {"i": out["interaction_id"]})
            .mappings()
            .one()
        )
        assert row["intent"] == "debugging_help" and row["needs_review"] is False
        assert row["retrieved_node_ids"] == [s["node_id"] for s in out["sources"]]
        assert row["model_versions"]["llm"].startswith("offline/")
        assert conn.execute(sa.text("SELECT count(*) FROM chat_messages")).scalar() == 2
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM generation_log WHERE interaction_id = :i"), {"i": out["interaction_id"]}
            ).scalar()
            == 1
        )


def test_confusion_window_grows_with_the_session(course, stubs):
    confusion = stubs["FixedConfusion"](0.8)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.7), confusion=confusion)
    p = pipeline(reg, stubs["HashEncoder"]())
    first = p.run(ALICE, ChatInput("how do loops work?"), "r1")
    session = first["session_id"]
    for i in range(3):
        p.run(ALICE, ChatInput(f"I still don't get it {i}", session_id=session), f"r{i + 2}")
    shapes = [w[0] for w in confusion.windows]
    assert shapes == [(1, 384), (2, 384), (3, 384), (3, 384)]
    gaps = [t.seconds_since_previous for t in confusion.windows[-1][1]]
    assert gaps[0] is None and all(g is not None and g >= 0 for g in gaps[1:])
    last = p.run(ALICE, ChatInput("huh?", session_id=session), "r9")
    assert last["is_confused"] is True
    assert "confused" not in " ".join(last["degraded"])


def test_without_models_fallbacks_answer_and_say_so(course, stubs):
    out = pipeline(stubs["NoModels"](), stubs["NoEncoder"]()).run(
        ALICE, ChatInput("why does my loop never end? while i < 10"), "r"
    )
    assert out["model_versions"]["intent"] == "keyword-rules"
    assert out["model_versions"]["confusion"] == "confusion-heuristic"
    assert set(out["degraded"]) >= {"encoder", "intent", "confusion"}
    assert out["intent"] == "debugging_help"
    assert out["sources"], "full-text retrieval still grounds the answer"
    assert out["topic_id"] == out["sources"][0]["topic_id"]


def test_low_confidence_asks_to_rephrase_and_queues_for_review(course, stubs):
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("review_summary", 0.3))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("hmm loops"), "r")
    assert out["needs_rephrase"] is True
    with course.connect() as conn:
        assert conn.execute(sa.text("SELECT needs_review FROM interactions")).scalar() is True


def test_mastery_drives_the_suggestion(course, stubs):
    from shared.mastery.store import record_answer

    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    p = pipeline(reg, stubs["HashEncoder"]())
    low = p.run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r1")
    assert "Review" in low["suggestion"]
    with course.begin() as conn:
        for _ in range(6):
            record_answer(conn, "alice", "py-loops", True)
    high = p.run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r2")
    assert high["mastery"] > 0.8 and "harder problem" in high["suggestion"]


def test_database_down_still_answers(stubs):
    def broken_engine():
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    out = pipeline(stubs["NoModels"](), stubs["HashEncoder"](), engine=broken_engine).run(
        ALICE, ChatInput("what is recursion"), "r"
    )
    assert out["reply"] and out["interaction_id"] is None
    assert "database" in out["degraded"] and out["sources"] == []


def test_unknown_topic_and_foreign_session(course, stubs):
    p = pipeline(stubs["NoModels"](), stubs["HashEncoder"]())
    with pytest.raises(DomainError) as info:
        p.run(ALICE, ChatInput("hi", topic_id="no-such-topic"), "r")
    assert info.value.kind == "not_found"
    bob_session = p.run(Principal("bob"), ChatInput("hello"), "r")["session_id"]
    with pytest.raises(DomainError) as info:
        p.run(ALICE, ChatInput("hi", session_id=bob_session), "r")
    assert info.value.kind == "forbidden"


def test_stream_yields_metadata_deltas_and_final(course, stubs):
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    events = list(pipeline(reg, stubs["HashEncoder"]()).stream(ALICE, ChatInput("what is a while loop"), "r"))
    kinds = [e for e, _ in events]
    assert kinds[0] == "metadata" and kinds[-1] == "final" and "delta" in kinds
    text = "".join(d["text"] for e, d in events if e == "delta")
    assert text == events[-1][1]["reply"]


def test_failed_retrieval_costs_the_sources_only_not_the_turns_session(course, stubs, monkeypatch):
    import shared.chat.pipeline as pipeline_module

    def failing_search(conn, *args, **kwargs):
        conn.execute(sa.text("SELECT 1 / 0"))  # aborts what it runs in, as a real failure would

    monkeypatch.setattr(pipeline_module, "fused_search", failing_search)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r")
    assert "retrieval" in out["degraded"] and "database" not in out["degraded"] and out["sources"] == []
    assert out["mastery"] == pytest.approx(0.2)  # read in the same transaction, after the failure
    with course.connect() as conn:  # the new session was committed, so the turn was logged into it
        assert conn.execute(sa.text("SELECT count(*) FROM chat_sessions")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM chat_messages")).scalar() == 2
    assert out["interaction_id"] is not None


def test_a_failed_full_text_search_costs_the_sources_only(course, stubs, monkeypatch):
    import shared.chat.pipeline as pipeline_module

    def failing_search(conn, *args, **kwargs):
        conn.execute(sa.text("SELECT 1 / 0"))

    monkeypatch.setattr(pipeline_module, "full_text_candidates", failing_search)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r")
    assert "retrieval" in out["degraded"] and "database" not in out["degraded"] and out["sources"] == []
    assert out["mastery"] == pytest.approx(0.2) and out["interaction_id"] is not None


def test_failed_topic_naming_costs_the_sources_only(course, stubs, monkeypatch):
    from shared.chat import grounding

    def failing_naming(conn, *args, **kwargs):
        conn.execute(sa.text("SELECT 1 / 0"))

    monkeypatch.setattr(grounding, "named_topics", failing_naming)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop"), "r")
    assert "retrieval" in out["degraded"] and "database" not in out["degraded"] and out["sources"] == []
    assert out["session_id"] is not None and out["interaction_id"] is not None


def test_the_models_read_the_message_in_a_worker_in_the_requests_context(course, stubs):
    """Without the encoder's intent head (`encoder_intent`), the intent model and then the
    encoder run beside the session read, intent first (the retrieval's kinds wait for it),
    in a copy of the request's context (its request id in logs)."""
    import threading

    from shared.logs import request_id_var

    seen: list[tuple[str, str | None, int]] = []

    class Spy:
        def __init__(self, name, inner):
            self.name, self.inner = name, inner

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

        def predict(self, texts):
            seen.append((self.name, request_id_var.get(), threading.get_ident()))
            return self.inner.predict(texts)

        def embed_one(self, text):
            seen.append((self.name, request_id_var.get(), threading.get_ident()))
            return self.inner.embed_one(text)

    reg = stubs["StubRegistry"](intent=Spy("intent", stubs["FixedIntent"]("concept_explanation", 0.9)))
    token = request_id_var.set("req-42")
    try:
        out = pipeline(reg, Spy("encoder", stubs["HashEncoder"]())).run(ALICE, ChatInput("what is a for loop"), "r")
    finally:
        request_id_var.reset(token)
    assert [name for name, _, _ in seen] == ["intent", "encoder"]
    assert {rid for _, rid, _ in seen} == {"req-42"}
    assert {tid for _, _, tid in seen} != {threading.get_ident()}
    assert out["intent"] == "concept_explanation" and out["sources"] and out["degraded"] == ["confusion"]


class OnePass:
    """A stand-in `encoder_intent`: the vector and the intent of one pass."""

    def __init__(self, label: str, confidence: float, fail: bool = False) -> None:
        from tests.fakes import HashEncoder

        self.label, self.confidence, self.fail, self.encoder, self.reads = label, confidence, fail, HashEncoder(), []

    def read(self, text):
        from shared.models.intent import IntentPrediction

        self.reads.append(text)
        if self.fail:
            raise RuntimeError("one pass down (test)")
        return self.encoder.embed_one(text), IntentPrediction(
            self.label, self.confidence, {self.label: self.confidence}
        )

    def known_word_share(self, text):
        return 1.0


class Untouchable:
    """A model or encoder the turn must not call."""

    def __getattr__(self, attr):
        raise AssertionError(f"{attr} called: the one pass should have answered")


def test_one_pass_reads_the_intent_and_the_vector_together(course, stubs, monkeypatch):
    """With `encoder_intent` in the version, one pass yields the intent and the vector:
    the intent model and the embedding service are not called. The full-text side is read
    for every kind before the intent is known; the sources keep the kinds it wants."""
    import shared.chat.pipeline as pipeline_module
    from shared.chat.prompt_book import spec_for

    searched = []
    real_search = pipeline_module.full_text_candidates

    def spy_search(conn, text, params):
        searched.append(params)
        return real_search(conn, text, params)

    monkeypatch.setattr(pipeline_module, "full_text_candidates", spy_search)
    one = OnePass("debugging_help", 0.91)
    reg = stubs["StubRegistry"](encoder_intent=one, intent=Untouchable(), confusion=stubs["FixedConfusion"](0.2))
    out = pipeline(reg, Untouchable()).run(
        ALICE, ChatInput("I get ZeroDivisionError when I divide", topic_id="py-debugging"), "r"
    )
    assert one.reads == ["I get ZeroDivisionError when I divide"]
    assert out["intent"] == "debugging_help" and out["confidence"] == pytest.approx(0.91)
    assert out["model_versions"]["intent"] == "intent-head@vtest" and out["degraded"] == []
    assert [p.kinds for p in searched] == [None] and searched[0].topic_ids == ["py-debugging"]
    wanted = set(spec_for("debugging_help", None).retrieval.kinds)
    with course.connect() as conn:
        kinds = conn.execute(
            sa.text("SELECT DISTINCT kind FROM knowledge_nodes WHERE id = ANY(:ids)"),
            {"ids": [s["node_id"] for s in out["sources"]]},
        ).scalars()
        assert out["sources"] and set(kinds) <= wanted


def test_a_failing_one_pass_falls_back_to_the_two_models(course, stubs):
    one = OnePass("debugging_help", 0.91, fail=True)
    reg = stubs["StubRegistry"](encoder_intent=one, intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop"), "r")
    assert one.reads == ["what is a for loop"]
    assert out["intent"] == "concept_explanation" and out["model_versions"]["intent"] == "intent-model@vtest"
    assert out["sources"] and out["degraded"] == ["confusion"]


def test_a_failing_one_pass_without_the_intent_model_reads_with_the_keyword_rules(course, stubs):
    """A version with the head does not load the intent model (the registry's
    SUPERSEDED_BY): if the one pass fails, the keyword rules and the encoder answer."""
    reg = stubs["StubRegistry"](encoder_intent=OnePass("debugging_help", 0.91, fail=True))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop"), "r")
    assert out["model_versions"]["intent"] == "keyword-rules" and "intent" in out["degraded"]
    assert "encoder" not in out["degraded"] and out["sources"]


def test_a_follow_up_turn_reads_without_taking_a_transaction_id(course, stubs):
    """A turn that creates nothing must not write: no row lock, no WAL flush at commit."""
    from shared.chat import conversation
    from shared.users import ensure_user

    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    first = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r")
    with course.begin() as conn:
        ensure_user(conn, ALICE)
        conversation.open_session(conn, ALICE, first["session_id"], None, "again")
        assert conn.execute(sa.text("SELECT txid_current_if_assigned()")).scalar() is None
    with course.begin() as conn:
        ensure_user(conn, Principal("alice", email="a@example.com"))  # a change is still written
        assert conn.execute(sa.text("SELECT txid_current_if_assigned()")).scalar() is not None
    with course.connect() as conn:
        assert conn.execute(sa.text("SELECT email FROM users WHERE id = 'alice'")).scalar() == "a@example.com"


def test_a_session_that_cannot_be_committed_degrades_the_turn_instead_of_failing_it(course, stubs, monkeypatch):
    import shared.chat.pipeline as pipeline_module

    def broken_commit(self):
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(pipeline_module._TurnTransaction, "checkpoint", broken_commit)
    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    out = pipeline(reg, stubs["HashEncoder"]()).run(ALICE, ChatInput("what is a for loop"), "r")
    assert out["reply"] and "database" in out["degraded"]
    assert out["session_id"] is None and out["interaction_id"] is None and out["sources"] == []
    with course.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM chat_sessions")).scalar() == 0


def test_a_follow_up_turn_sends_few_statements(course, stubs):
    """The latency budget (docs/chat.md): a follow-up turn on the session's topic sets its
    commit not to wait for the WAL flush, reads the caller, the session with its topic and
    history, the knowledge base's full-text side, the named topics, the vector side fused
    with the text side, and the student's profile and mastery: seven statements, each one
    round trip (the full-text side is apart so it runs while the encoder works). Its
    writes commit asynchronously, nothing else's."""
    reg = stubs["StubRegistry"](
        intent=stubs["FixedIntent"]("concept_explanation", 0.9), confusion=stubs["FixedConfusion"](0.2)
    )
    p = pipeline(reg, stubs["HashEncoder"](), engine=lambda: course)
    first = p.run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r1")
    p.run(ALICE, ChatInput("and a while loop?", session_id=first["session_id"]), "r2")
    with recorded_statements(course) as statements:
        turn = p.prepare(ALICE, ChatInput("how do for loops end?", session_id=first["session_id"]), "r3")
    assert turn.topic_id == "py-loops" and not turn.degraded
    assert len(statements) == 7, statements
    assert "synchronous_commit" in statements[0]
    with course.connect() as conn:
        assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
    assert turn.mastery == pytest.approx(0.2)  # the topic's prior
    assert turn.profile == Profile()  # the row exists, nothing set yet


def test_a_turn_that_finds_its_topic_takes_the_title_from_the_hits(course, stubs):
    """Retrieval decides a new session's topic; the fused statement returns each hit's
    topic title with it, so the title costs no statement of its own."""
    reg = stubs["StubRegistry"](
        intent=stubs["FixedIntent"]("concept_explanation", 0.9), confusion=stubs["FixedConfusion"](0.2)
    )
    p = pipeline(reg, stubs["HashEncoder"](), engine=lambda: course)
    with recorded_statements(course) as statements:
        turn = p.prepare(ALICE, ChatInput("how does a for loop repeat over a list of items?"), "r1")
    assert turn.topic_reason != "none" and turn.topic_id is not None, turn.topic_reason
    with course.connect() as conn:
        title = conn.execute(sa.text("SELECT title FROM topics WHERE id = :id"), {"id": turn.topic_id}).scalar()
    assert turn.topic_title == title
    assert not [s for s in statements if s.startswith("SELECT title FROM topics")], statements


class SlowEncoder:
    """The stand-in encoder, slow enough that the request thread always waits for it."""

    def __init__(self, inner, seconds: float = 0.05) -> None:
        self.inner, self.seconds = inner, seconds

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def embed_one(self, text):
        import time

        time.sleep(self.seconds)
        return self.inner.embed_one(text)


def test_the_student_is_read_while_the_encoder_works_and_reread_when_the_topic_moves(course, stubs):
    """Mastery is read for the session's topic while the request thread waits for the
    vector; a turn that stays on the topic uses that read (no statement added), a turn
    that moves reads the new topic's mastery."""
    from shared.mastery.store import record_answer

    reg = stubs["StubRegistry"](
        intent=stubs["FixedIntent"]("concept_explanation", 0.9), confusion=stubs["FixedConfusion"](0.2)
    )
    p = pipeline(reg, SlowEncoder(stubs["HashEncoder"]()), engine=lambda: course)
    first = p.run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r1")
    with course.begin() as conn:
        for _ in range(6):
            record_answer(conn, "alice", "py-loops", True)
    with recorded_statements(course) as statements:
        stays = p.prepare(ALICE, ChatInput("how do for loops end?", session_id=first["session_id"]), "r2")
    assert stays.topic_id == "py-loops" and "mastery_early" in stays.timings and not stays.degraded
    assert stays.mastery > 0.8 and len(statements) == 7, statements
    moves = p.prepare(
        ALICE, ChatInput("what is a variable", session_id=first["session_id"], topic_id="py-variables"), "r3"
    )
    assert moves.topic_id == "py-variables" and "mastery_early" in moves.timings
    assert moves.mastery == pytest.approx(0.2)  # the new topic's prior, not the loops' mastery


def test_a_follow_up_turn_sees_the_last_messages_oldest_first(course, stubs):
    from shared.chat import conversation

    reg = stubs["StubRegistry"](intent=stubs["FixedIntent"]("concept_explanation", 0.9))
    p = pipeline(reg, stubs["HashEncoder"](), engine=lambda: course)
    first = p.run(ALICE, ChatInput("what is a for loop", topic_id="py-loops"), "r1")
    for text in ("second", "third", "fourth"):
        p.run(ALICE, ChatInput(text, session_id=first["session_id"]), text)
    with course.begin() as conn:
        view = conversation.open_session(conn, ALICE, first["session_id"], None, "x", history=2)
        assert [m.content for m in view.history] == ["third", "fourth"]
        assert all(m.embedding is not None and m.embedding.shape == (384,) for m in view.history)
        assert (view.topic_id, view.topic_title) == ("py-loops", "Loops")
        assert conversation.open_session(conn, ALICE, first["session_id"], None, "x").history == []
