"""Silver labels: an LLM grades unlabelled interactions through the real router.

The provider is a scripted stand-in behind the real `LLMRouter` (structured output,
retries, the offline last resort, the generation log); it records what it was sent, so
the tests see that only the redacted query leaves, over the taxonomy in service.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from learning_helpers import TEST_LABELS

from shared.learning.feedback import review_queue
from shared.learning.signals import Taxonomy
from shared.learning.silver import PROMPT_VERSION, label_silver
from shared.llm import LLMRouter, Prompt
from shared.llm.errors import ProviderError
from shared.llm.providers.offline import OfflineProvider
from shared.llm.types import ProviderResult

TAXONOMY = Taxonomy(tuple(TEST_LABELS), "v7", "weights-sha")


class ScriptedGrader:
    """A provider that answers with `answer(user_text)` and records every prompt."""

    name = "openai"

    def __init__(self, answer: Callable[[str], str]) -> None:
        self.answer = answer
        self.prompts: list[Prompt] = []

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        self.prompts.append(prompt)
        return ProviderResult(self.answer(prompt.messages[0].content), model, tokens_in=40, tokens_out=8)

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        raise NotImplementedError


def router_with(grader: Any | None) -> LLMRouter:
    providers: dict[str, Any] = {"offline": OfflineProvider()}
    order = ["offline"]
    if grader is not None:
        providers = {"openai": grader, **providers}
        order = ["openai", "offline"]
    return LLMRouter(providers, order, {"openai": {"default": "gpt-stub"}}, max_attempts=1, sleep=lambda _s: None)


def answer(label: str, confidence: float = 0.8) -> str:
    return json.dumps({"label": label, "confidence": confidence})


@pytest.fixture()
def queries(ldb) -> Callable[..., list[str]]:
    """`queries([(query, model_intent), ...])` inserts unlabelled interactions of alice."""

    def make(rows: list[tuple[str, str | None]], *, labelled: str | None = None) -> list[str]:
        with ldb.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice'), ('root') ON CONFLICT DO NOTHING"))
            return [
                str(
                    conn.execute(
                        sa.text(
                            """INSERT INTO interactions (request_id, user_id, query, intent, intent_confidence,
                                                         human_label, labelled_by)
                               VALUES ('r', 'alice', :q, :i, 0.9, :h, :by)
                               RETURNING id"""
                        ),
                        {"q": q, "i": intent, "h": labelled, "by": "root" if labelled else None},
                    ).scalar_one()
                )
                for q, intent in rows
            ]

    return make


def silver_rows(db) -> list[dict]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM silver_labels ORDER BY id")).mappings()]


def test_with_only_the_offline_provider_nothing_is_graded_and_it_says_so(ldb, queries):
    queries([("why does my loop never stop", "debugging_help")])
    report = label_silver(ldb, router_with(None), taxonomy=TAXONOMY)
    assert report.labelled == 0 and report.candidates == 0
    assert "only the offline provider" in report.skipped
    assert silver_rows(ldb) == []


def test_queries_are_graded_redacted_stored_apart_and_disagreements_queued(ldb, queries):
    agree, disagree = queries(
        [
            ("my loop never stops, mail me at ada@example.com or +44 20 7946 0958", "debugging_help"),
            ("what is recursion", "practice_quiz"),
        ]
    )
    grader = ScriptedGrader(lambda text: answer("debugging_help" if "loop" in text else "concept_explanation", 0.9))
    report = label_silver(ldb, router_with(grader), taxonomy=TAXONOMY)

    assert (report.candidates, report.labelled, report.disagreements, report.failed) == (2, 2, 1, 0)
    sent = {p.messages[0].content for p in grader.prompts}
    assert "my loop never stops, mail me at <email> or <number>" in sent  # redacted as the export does
    assert not any("alice" in p.render() or "ada@" in p.render() for p in grader.prompts)  # no identifiers
    system = grader.prompts[0].system
    assert all(f"- {label}" in system for label in TEST_LABELS)
    assert '"enum":' in system and "practice_quiz" in system  # the schema's label enum is the taxonomy

    rows = {str(r["interaction_id"]): r for r in silver_rows(ldb)}
    assert rows[agree]["label"] == "debugging_help" and rows[agree]["agrees"] is True
    assert rows[disagree]["label"] == "concept_explanation" and rows[disagree]["agrees"] is False
    assert rows[disagree]["model_intent"] == "practice_quiz"
    for row in rows.values():
        assert (row["provider"], row["llm_model"], row["prompt_version"]) == ("openai", "gpt-stub", PROMPT_VERSION)
        assert row["confidence"] == pytest.approx(0.9) and row["taxonomy_version"] == "v7"

    with ldb.connect() as conn:
        queue = review_queue(conn, 50, 0)
        human = conn.execute(sa.text("SELECT count(*) FROM interactions WHERE human_label IS NOT NULL")).scalar()
        logged = conn.execute(sa.text("SELECT count(*) FROM generation_log WHERE task = 'silver_label'")).scalar()
    assert [str(item["id"]) for item in queue] == [disagree]  # only the disagreement waits for a human
    assert queue[0]["reasons"] == ["silver_disagrees"]
    assert queue[0]["silver"]["label"] == "concept_explanation" and queue[0]["silver"]["provider"] == "openai"
    assert human == 0  # silver labels never become human labels
    assert logged == 2

    again = label_silver(ldb, router_with(grader), taxonomy=TAXONOMY)  # nothing left to grade
    assert again.candidates == 0 and len(silver_rows(ldb)) == 2


def test_an_answer_outside_the_taxonomy_is_reasked_then_refused(ldb, queries):
    queries([("explain closures", "concept_explanation")])
    outside = ScriptedGrader(lambda _text: answer("tutor_feedback"))
    report = label_silver(ldb, router_with(outside), taxonomy=TAXONOMY)
    assert report.labelled == 0 and report.failed == 1
    assert len(outside.prompts) == 2  # asked again with the validation error (LLM_JSON_ATTEMPTS=2)
    assert "rejected" in outside.prompts[1].messages[-1].content
    assert silver_rows(ldb) == []

    fixed = iter([answer("tutor_feedback"), answer("concept_explanation", 0.7)])
    report = label_silver(ldb, router_with(ScriptedGrader(lambda _t: next(fixed))), taxonomy=TAXONOMY)
    assert report.labelled == 1 and silver_rows(ldb)[0]["label"] == "concept_explanation"


def test_labelled_interactions_are_never_graded_and_a_provider_outage_stops_the_pass(ldb, queries):
    queries([("already labelled", "off_topic")], labelled="off_topic")
    queries([(f"question {i}", "concept_explanation") for i in range(8)])

    class Down(ScriptedGrader):
        def generate(self, model, prompt, timeout_s):
            self.prompts.append(prompt)
            raise ProviderError("openai", "503 from upstream", transient=True, status=503)

    down = Down(lambda _t: "")
    report = label_silver(ldb, router_with(down), taxonomy=TAXONOMY)
    assert report.candidates == 8  # the labelled one is not a candidate
    assert report.failed == 5 and "stopped after 5 failures" in report.skipped
    assert silver_rows(ldb) == []


def test_silver_labels_are_exported_with_the_query_redacted(ldb, queries, tmp_path):
    from shared.artifacts.store import LocalStore
    from shared.learning.datasets import export_dataset, read_dataset

    queries([("call me on 0612345678 about my bug", "debugging_help")])
    label_silver(ldb, router_with(ScriptedGrader(lambda _t: answer("debugging_help"))), taxonomy=TAXONOMY)
    today = dt.datetime.now(dt.UTC).date()
    store = LocalStore(tmp_path / "datasets")
    export_dataset(ldb, store, today, today=today + dt.timedelta(days=1))
    (row,) = read_dataset(store, today).tables["silver_labels"].to_pylist()
    assert row["query"] == "call me on <number> about my bug"
    assert (row["label"], row["provider"], row["prompt_version"], row["agrees"]) == (
        "debugging_help",
        "openai",
        PROMPT_VERSION,
        True,
    )


def test_the_nightly_tick_grades_before_it_exports(ldb, queries, tmp_path, monkeypatch):
    from shared.artifacts.store import LocalStore
    from shared.learning import signals
    from shared.learning.nightly import run_nightly
    from shared.learning.outbox import LocalPublisher

    monkeypatch.setattr(signals, "current_taxonomy", lambda: TAXONOMY)
    monkeypatch.setattr("shared.learning.silver.current_taxonomy", lambda: TAXONOMY)
    queries([("what is a tuple", "concept_explanation")])
    grader = ScriptedGrader(lambda _t: answer("concept_explanation"))
    delivered: list[Any] = []
    report = run_nightly(
        ldb,
        date=dt.date(2026, 11, 30),
        store=LocalStore(tmp_path / "datasets"),
        publisher=LocalPublisher(deliver=delivered.append),
        router=router_with(grader),
        silver_limit=10,
    )
    assert report["silver"]["labelled"] == 1 and report["silver"]["disagreements"] == 0
    offline = run_nightly(
        ldb,
        date=dt.date(2026, 11, 29),
        store=LocalStore(tmp_path / "datasets"),
        publisher=LocalPublisher(deliver=delivered.append),
        router=router_with(None),
    )
    assert "only the offline provider" in offline["silver"]["skipped"]


def test_a_pass_stops_at_its_time_budget(ldb, queries):
    queries([(f"question {i}", "concept_explanation") for i in range(3)])
    grader = ScriptedGrader(lambda _t: answer("concept_explanation"))
    report = label_silver(ldb, router_with(grader), taxonomy=TAXONOMY, budget_s=0)
    assert report.labelled == 0 and grader.prompts == []
    assert report.skipped == "time budget of 0 s used: 3 left"
