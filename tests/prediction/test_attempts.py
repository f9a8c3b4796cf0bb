"""complete_attempt: the one place an attempt is finished (prediction and grading)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from shared.attempts import (
    AttemptCompletedError,
    AttemptForbiddenError,
    AttemptMismatchError,
    AttemptNotFoundError,
    QuestionNotFoundError,
    TopicNotFoundError,
    complete_attempt,
    record_prediction,
)
from shared.learning.retrain_requests import completed_task_count, pending_requests


def _predicted(engine: Any, user: str = "alice", topic: str = "py-basics", difficulty: int = 3) -> str:
    with engine.begin() as conn:
        return record_prediction(
            conn,
            user,
            topic_id=topic,
            question_id=None,
            difficulty=difficulty,
            p_correct=0.62,
            expected_seconds=48.0,
            predictor="irt",
            predictor_version="irt-12-abcd",
        )


def _row(engine: Any, attempt_id: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT * FROM task_attempts WHERE id = CAST(:id AS uuid)"), {"id": attempt_id})
            .mappings()
            .one()
        )


def test_completing_a_prediction_stores_the_outcome_beside_it(course: Any) -> None:
    attempt_id = _predicted(course)
    with course.begin() as conn:
        done = complete_attempt(conn, "alice", attempt_id, correct=True, time_seconds=31.5, retrain_every=100)
    row = _row(course, attempt_id)
    assert row["status"] == "completed" and row["correct"] is True and row["time_seconds"] == 31.5
    assert row["predicted_correct"] == pytest.approx(0.62) and row["predictor"] == "irt"
    assert row["completed_at"] is not None and row["score"] == 10.0
    assert done.predicted_correct == pytest.approx(0.62) and done.predictor_version == "irt-12-abcd"
    with course.connect() as conn:
        mastery = conn.execute(sa.text("SELECT p_mastery, n_updates FROM mastery_state WHERE user_id='alice'")).one()
        progress = conn.execute(
            sa.text("SELECT tasks_completed, tasks_correct, total_seconds FROM student_progress WHERE user_id='alice'")
        ).one()
    assert mastery[1] == 1 and mastery[0] == pytest.approx(done.mastery) and done.mastery > 0.2  # above the prior
    assert tuple(progress) == (1, 1, 31.5)


def test_partial_credit_is_soft_evidence_and_a_graded_row_keeps_its_grade(course: Any) -> None:
    with course.begin() as conn:
        done = complete_attempt(
            conn,
            "alice",
            topic_id="py-loops",
            difficulty=2,
            correct=0.6,
            score=6.0,
            verdict="partially_correct",
            feedback="Close.",
            answer="a loop",
            grader="llm",
            grader_version="gemini",
            retrain_every=100,
        )
        full = complete_attempt(conn, "bob", topic_id="py-loops", difficulty=2, correct=1.0, retrain_every=100)
    row = _row(course, done.attempt_id)
    # a partially correct answer is not a right one: stored so, and it cannot raise mastery
    assert (row["verdict"], row["grader"], row["score"], row["correct"]) == ("partially_correct", "llm", 6.0, False)
    assert row["time_seconds"] is None  # grading may not know the time
    assert done.mastery <= 0.2 < full.mastery


def test_a_question_sets_topic_and_difficulty(course: Any) -> None:
    with course.begin() as conn:
        done = complete_attempt(conn, "alice", question_id="q-loops-1", correct=False, retrain_every=100)
    assert (done.topic_id, done.difficulty, done.question_id) == ("py-loops", 4, "q-loops-1")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"topic_id": "nope", "difficulty": 2}, TopicNotFoundError),
        ({"question_id": "nope"}, QuestionNotFoundError),
        ({"question_id": "q-loops-1", "topic_id": "py-basics"}, AttemptMismatchError),
        ({"topic_id": "py-basics", "difficulty": 2, "time_seconds": -1.0}, AttemptMismatchError),
        ({"topic_id": "py-basics", "difficulty": 2, "time_seconds": float("nan")}, AttemptMismatchError),
        ({"topic_id": "py-basics", "difficulty": 2, "time_seconds": float("inf")}, AttemptMismatchError),
        ({"topic_id": "py-basics", "difficulty": 9}, AttemptMismatchError),
        ({"topic_id": "py-basics", "difficulty": 2, "verdict": "great"}, AttemptMismatchError),
    ],
)
def test_bad_tasks_are_refused_and_change_nothing(course: Any, kwargs: dict, error: type) -> None:
    with pytest.raises(error), course.begin() as conn:
        complete_attempt(conn, "alice", correct=1.0, **kwargs)
    with course.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM task_attempts")).scalar_one() == 0
        assert completed_task_count(conn) == 0


def test_a_topic_prediction_can_be_answered_on_a_question_of_that_topic_only(course: Any) -> None:
    loops = _predicted(course, topic="py-loops", difficulty=4)
    basics = _predicted(course, topic="py-basics")
    with pytest.raises(AttemptMismatchError), course.begin() as conn:
        complete_attempt(conn, "alice", basics, question_id="q-loops-1", correct=1.0)
    with pytest.raises(QuestionNotFoundError), course.begin() as conn:
        complete_attempt(conn, "alice", loops, question_id="nope", correct=1.0)
    with course.begin() as conn:
        done = complete_attempt(conn, "alice", loops, question_id="q-loops-1", correct=1.0, retrain_every=100)
    assert _row(course, loops)["question_id"] == "q-loops-1" == done.question_id


def test_ownership_state_and_identity_are_checked(course: Any) -> None:
    attempt_id = _predicted(course)
    for user, attempt, error in [
        ("mallory", attempt_id, AttemptForbiddenError),
        ("alice", "not-a-uuid", AttemptNotFoundError),
        ("alice", "00000000-0000-0000-0000-000000000000", AttemptNotFoundError),
    ]:
        with pytest.raises(error), course.begin() as conn:
            complete_attempt(conn, user, attempt, correct=1.0, time_seconds=3.0)
    with pytest.raises(AttemptMismatchError), course.begin() as conn:
        complete_attempt(conn, "alice", attempt_id, topic_id="py-loops", correct=1.0)
    assert _row(course, attempt_id)["status"] == "predicted"
    with course.begin() as conn:
        complete_attempt(conn, "alice", attempt_id, correct=0.0, time_seconds=3.0, retrain_every=100)
    with pytest.raises(AttemptCompletedError), course.begin() as conn:
        complete_attempt(conn, "alice", attempt_id, correct=1.0, time_seconds=3.0, retrain_every=100)
    assert _row(course, attempt_id)["correct"] is False  # the first outcome stands


def test_every_nth_completion_records_one_retrain_request(course: Any) -> None:
    with course.begin() as conn:
        results = [
            complete_attempt(conn, f"u{i % 3}", topic_id="py-basics", difficulty=2, correct=1.0, retrain_every=5)
            for i in range(12)
        ]
    made = [r.retrain_request for r in results if r.retrain_request]
    assert [r.threshold for r in made] == [5, 10]
    assert [r.completed_tasks for r in results] == list(range(1, 13))
    with course.connect() as conn:
        pending = pending_requests(conn)
    assert [(p["reason"], p["payload"]["threshold"]) for p in pending] == [
        ("tasks_threshold", 5),
        ("tasks_threshold", 10),
    ]


def test_a_threshold_crossing_is_recorded_once(course: Any) -> None:
    from shared.learning.retrain_requests import count_completed_task

    with course.begin() as conn:
        _, first = count_completed_task(conn, every=1)
        # a replay of the same crossing (e.g. the counter restored from a backup) is a no-op
        conn.execute(sa.text("UPDATE prediction_counters SET value = 0"))
        _, again = count_completed_task(conn, every=1)
    assert first is not None and again is None
    with course.connect() as conn:
        assert len(pending_requests(conn)) == 1


def test_concurrent_completions_of_one_attempt_succeed_once(course: Any) -> None:
    attempt_id = _predicted(course)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            with course.begin() as conn:
                complete_attempt(conn, "alice", attempt_id, correct=1.0, time_seconds=1.0, retrain_every=100)
            outcomes.append("ok")
        except AttemptCompletedError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    with course.connect() as conn:
        assert completed_task_count(conn) == 1
        assert conn.execute(sa.text("SELECT n_updates FROM mastery_state")).scalar_one() == 1
