"""POST /api/prediction and /api/prediction/complete through the local server's app."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from shared.prediction.features import FEATURE_NAMES
from shared.prediction.irt import MIN_ATTEMPTS


def _predict(client: Any, bearer: Any, user: str = "alice", **body: Any) -> Any:
    return client.post("/api/prediction", json=body, headers=bearer(user))


def _complete(client: Any, bearer: Any, user: str = "alice", **body: Any) -> Any:
    return client.post("/api/prediction/complete", json=body, headers=bearer(user))


def test_a_new_student_gets_a_default_prediction_and_an_attempt_to_complete(
    client: Any, bearer: Any, course: Any, network: Any
) -> None:
    res = _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert res.status_code == 200, res.json
    body = res.json
    assert body["model"] == "default" and body["model_version"] == "default-1"
    assert 0 < body["p_correct"] < 1 and body["expected_seconds"] > 0
    assert list(body["features"]) == list(FEATURE_NAMES) and body["features"]["overall_count"] == 0
    assert body["request_id"] and body["fallback_reason"]
    with course.connect() as conn:
        row = conn.execute(sa.text("SELECT user_id, status, predicted_correct, predictor FROM task_attempts")).one()
    assert tuple(row[:2]) == ("alice", "predicted") and row[3] == "default"
    assert row[2] == pytest.approx(body["p_correct"], abs=1e-4)

    harder = _predict(client, bearer, topic_id="py-basics", difficulty=5).json
    assert harder["p_correct"] < body["p_correct"] and harder["expected_seconds"] > body["expected_seconds"]

    done = _complete(client, bearer, attempt_id=body["attempt_id"], correct=True, time_seconds=42)
    assert done.status_code == 200, done.json
    assert done.json["correct"] is True and done.json["predicted_correct"] == pytest.approx(body["p_correct"], abs=1e-4)
    mastery = client.get("/api/prediction/mastery", headers=bearer("alice")).json["mastery"]
    basics = next(m for m in mastery if m["topic_id"] == "py-basics")
    assert basics["p_mastery"] == pytest.approx(done.json["mastery"]) and basics["tasks_completed"] == 1


def test_a_question_supplies_topic_and_difficulty(client: Any, bearer: Any, course: Any, network: Any) -> None:
    body = _predict(client, bearer, question_id="q-loops-1").json
    assert (body["topic_id"], body["difficulty"], body["question_id"]) == ("py-loops", 4, "q-loops-1")


def test_the_fallback_answers_once_attempts_exist_and_history_personalises_it(
    client: Any, bearer: Any, course: Any, network: Any, complete_some: Any
) -> None:
    complete_some(course, "strong", [("py-loops", 3, True, 20.0)] * MIN_ATTEMPTS)
    complete_some(course, "weak", [("py-loops", 3, False, 90.0)] * MIN_ATTEMPTS)
    strong = _predict(client, bearer, "strong", topic_id="py-loops", difficulty=3).json
    weak = _predict(client, bearer, "weak", topic_id="py-loops", difficulty=3).json
    new = _predict(client, bearer, "newbie", topic_id="py-functions", difficulty=3).json
    assert strong["model"] == weak["model"] == new["model"] == "irt"
    assert strong["model_version"].startswith(f"irt-{2 * MIN_ATTEMPTS}-")
    assert strong["p_correct"] > new["p_correct"] > weak["p_correct"]
    assert strong["expected_seconds"] < weak["expected_seconds"]
    assert new["unknown"] == ["user", "topic"] and strong["unknown"] == []
    assert strong["features"]["topic_success_rate"] == 1.0 and strong["features"]["topic_count"] == MIN_ATTEMPTS


def test_the_network_answers_for_ids_it_knows_and_the_fallback_for_ids_only_it_knows(
    client: Any, bearer: Any, course: Any, network: Any, fake_network: Any, complete_some: Any
) -> None:
    model = fake_network(users={"alice"}, topics={"py-basics"}, p=0.81, seconds=33.0)
    network(model, version="v9")
    body = _predict(client, bearer, topic_id="py-basics", difficulty=2).json
    answer = (body["model"], body["model_version"], body["p_correct"], body["expected_seconds"])
    assert answer == ("network", "v9", 0.81, 33.0)
    assert body["unknown"] == []
    # features reach the network encoded, 11 of them
    assert model.calls[-1][3].shape == (11,)

    # a topic the network never saw, and no attempts: the network's 'unknown' row answers
    body = _predict(client, bearer, topic_id="py-loops", difficulty=2).json
    assert body["model"] == "network" and body["unknown"] == ["topic"]

    # once the fallback has attempts on that topic, it answers instead, and says why
    complete_some(course, "bob", [("py-loops", 2, True, 10.0)] * MIN_ATTEMPTS)
    body = _predict(client, bearer, topic_id="py-loops", difficulty=2).json
    assert body["model"] == "irt" and "topic" in body["fallback_reason"]


def test_the_network_reads_the_students_newest_attempts_as_a_sequence(
    client: Any, bearer: Any, course: Any, network: Any, fake_network: Any, complete_some: Any
) -> None:
    model = fake_network(users={"alice"}, topics={"py-basics", "py-loops"}, recent_window=3)
    network(model)
    _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert model.recent[-1] == []  # no completed attempt yet (the predicted one does not count)
    complete_some(
        course,
        "alice",
        [
            ("py-basics", 2, True, 10.0),
            ("py-loops", 2, False, 20.0),
            ("py-loops", 3, True, 5.0),
            ("py-basics", 1, False, 9.0),
        ],
    )
    complete_some(course, "bob", [("py-loops", 2, True, 10.0)])
    _predict(client, bearer, topic_id="py-loops", difficulty=2)
    assert model.recent[-1] == [("py-loops", 0.0), ("py-loops", 1.0), ("py-basics", 0.0)]
    # a version without the sequence input is called as before, without it
    old = fake_network(users={"alice"}, topics={"py-basics"})
    network(old)
    _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert old.recent == [None]


@pytest.mark.parametrize("broken", ["raises", "nan", "registry", "known"])
def test_a_broken_network_falls_back(
    client: Any, bearer: Any, course: Any, network: Any, fake_network: Any, broken: str
) -> None:
    model = fake_network(users={"alice"}, topics={"py-basics"}, p=float("nan"))
    if broken == "raises":

        def boom(*_: Any) -> None:
            raise RuntimeError("onnxruntime exploded")

        model.predict = boom
        network(model)
    elif broken == "known":

        def no_vocabulary(*_: Any) -> None:
            raise KeyError("users")

        model.known = no_vocabulary
        network(model)
    elif broken == "registry":
        network(error=OSError("store down"))
    else:
        network(model)
    res = _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert res.status_code == 200
    assert res.json["model"] == "default" and "network model" in res.json["fallback_reason"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"topic_id": "no-such-topic", "difficulty": 2}, 404),
        ({"question_id": "no-such-question"}, 404),
        ({"topic_id": "py-basics", "difficulty": 6}, 422),
        ({"topic_id": "py-basics", "difficulty": 0}, 422),
        ({"topic_id": "py-basics"}, 422),
        ({"difficulty": 2}, 422),
        ({"topic_id": "py-basics", "difficulty": 2, "user_id": "bob"}, 422),
        ({"topic_id": "py-loops", "question_id": "q-loops-1", "difficulty": 2, "extra": 1}, 422),
        ({"topic_id": "py-basics", "question_id": "q-loops-1"}, 422),
    ],
)
def test_bad_prediction_requests_get_clear_errors(
    client: Any, bearer: Any, course: Any, network: Any, body: dict, status: int
) -> None:
    res = _predict(client, bearer, **body)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"] and res.json["error"]["message"]
    with course.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM task_attempts")).scalar_one() == 0


def test_bad_completions_get_clear_errors(client: Any, bearer: Any, course: Any, network: Any) -> None:
    attempt_id = _predict(client, bearer, topic_id="py-basics", difficulty=2).json["attempt_id"]
    cases = [
        ("alice", {"attempt_id": attempt_id, "correct": True, "time_seconds": -1}, 422),
        ("alice", {"attempt_id": attempt_id, "correct": "yes", "time_seconds": 3}, 422),
        ("alice", {"attempt_id": attempt_id, "correct": True}, 422),
        ("alice", {"attempt_id": "00000000-0000-0000-0000-000000000000", "correct": True, "time_seconds": 3}, 404),
        ("mallory", {"attempt_id": attempt_id, "correct": True, "time_seconds": 3}, 403),
    ]
    for user, body, status in cases:
        res = _complete(client, bearer, user, **body)
        assert res.status_code == status, (body, res.json)
    assert _complete(client, bearer, attempt_id=attempt_id, correct=False, time_seconds=3).status_code == 200
    again = _complete(client, bearer, attempt_id=attempt_id, correct=True, time_seconds=3)
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"


def test_routes_need_a_token(client: Any, course: Any) -> None:
    assert client.post("/api/prediction", json={"topic_id": "py-basics", "difficulty": 2}).status_code == 401
    assert client.post("/api/prediction/complete", json={}).status_code == 401


def test_completions_count_toward_retraining(
    client: Any, bearer: Any, course: Any, network: Any, settings: Any
) -> None:
    every = settings.retrain_every_completed_tasks
    made = []
    for _ in range(every * 2):
        attempt_id = _predict(client, bearer, topic_id="py-basics", difficulty=2).json["attempt_id"]
        made.append(_complete(client, bearer, attempt_id=attempt_id, correct=True, time_seconds=5).json)
    requests = [m["retrain_request"] for m in made if m["retrain_request"]]
    assert [r["threshold"] for r in requests] == [every, 2 * every]
    with course.connect() as conn:
        rows = conn.execute(sa.text("SELECT reason, status FROM retrain_requests ORDER BY id")).all()
    # Each request is published right after the commit that recorded it (the local subscriber).
    assert [tuple(r) for r in rows] == [("tasks_threshold", "published")] * 2


def test_ten_right_answers_do_not_break_prediction_for_anyone(
    client: Any, bearer: Any, course: Any, network: Any, complete_some: Any
) -> None:
    """Issue 17: after ~10 completed attempts the fallback's fit overflowed: 500 for all."""
    complete_some(course, "alice", [("py-loops", 2, True, 30.0)] * MIN_ATTEMPTS)
    for user in ("alice", "newbie"):
        for topic in ("py-loops", "py-basics"):
            res = _predict(client, bearer, user, topic_id=topic, difficulty=2)
            assert res.status_code == 200, res.json
            assert res.json["model"] == "irt" and 0.01 <= res.json["p_correct"] <= 0.99


def test_a_refit_on_75_mixed_attempts_predicts_every_topic(
    client: Any, bearer: Any, course: Any, network: Any, complete_some: Any
) -> None:
    """Issue 17: after a refit on 75 attempts 9 of 21 topics failed and the rest said 1.0."""
    import random

    topics = [f"py-extra-{i}" for i in range(18)] + ["py-basics", "py-loops", "py-functions"]
    with course.begin() as conn:
        for i, topic in enumerate(topics[:18]):
            conn.execute(
                sa.text("INSERT INTO topics (id, course_id, title, position) VALUES (:id, 'py', :id, :i)"),
                {"id": topic, "i": 10 + i},
            )
    rnd = random.Random(17)
    for user in ("s1", "s2", "s3", "s4", "s5"):
        outcomes = [(rnd.choice(topics), rnd.randint(1, 5), rnd.random() < 0.6, rnd.uniform(5, 300)) for _ in range(15)]
        complete_some(course, user, outcomes)
    answers = []
    for topic in topics:
        res = _predict(client, bearer, "newbie", topic_id=topic, difficulty=2)
        assert res.status_code == 200, (topic, res.json)
        assert res.json["model"] == "irt" and res.json["model_version"].startswith("irt-75-")
        answers.append(res.json["p_correct"])
    assert all(0.01 <= p <= 0.99 for p in answers) and len(set(answers)) > 1


@pytest.mark.parametrize(("raw", "clipped"), [(1.0, 0.99), (0.0, 0.01), (0.5, 0.5)])
def test_a_prediction_is_never_certain(
    client: Any, bearer: Any, course: Any, network: Any, fake_network: Any, raw: float, clipped: float
) -> None:
    """A saturated network (sigmoid of a huge logit is exactly 1.0 in float64) is clipped."""
    network(fake_network(users={"alice"}, topics={"py-basics"}, p=raw, seconds=0.0))
    res = _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert res.status_code == 200
    assert res.json["model"] == "network" and res.json["p_correct"] == clipped
    assert res.json["expected_seconds"] >= 1.0


def test_a_fallback_that_raises_answers_with_the_defaults(
    client: Any, bearer: Any, course: Any, network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.prediction.service as service

    def boom(*_: Any, **__: Any) -> None:
        raise FloatingPointError("overflow")

    monkeypatch.setattr(service.irt_cache(), "get", boom)
    res = _predict(client, bearer, topic_id="py-basics", difficulty=2)
    assert res.status_code == 200, res.json
    assert res.json["model"] == "default" and "fallback model failed" in res.json["fallback_reason"]


@pytest.mark.parametrize(
    "spell",
    [
        lambda u: f"urn:uuid:{u}",
        lambda u: "{" + u + "}",
        lambda u: u.replace("-", "").upper(),
        lambda u: f"URN:UUID:{u.upper()}",
    ],
)
def test_any_standard_uuid_spelling_completes_the_attempt(
    client: Any, bearer: Any, course: Any, network: Any, spell: Any
) -> None:
    """Issue 17: an attempt_id written as urn:uuid:<uuid> was a 500."""
    attempt_id = _predict(client, bearer, topic_id="py-basics", difficulty=2).json["attempt_id"]
    res = _complete(client, bearer, attempt_id=spell(attempt_id), correct=True, time_seconds=12)
    assert res.status_code == 200, res.json
    assert res.json["attempt_id"] == attempt_id  # answered in the canonical spelling
    again = _complete(client, bearer, attempt_id=attempt_id, correct=True, time_seconds=12)
    assert again.status_code == 409


@pytest.mark.parametrize("bad", ["urn:uuid:not-a-uuid", "urn:isbn:0451450523", "{}", "12345"])
def test_a_malformed_attempt_id_is_not_found_not_a_500(
    client: Any, bearer: Any, course: Any, network: Any, bad: str
) -> None:
    res = _complete(client, bearer, attempt_id=bad, correct=True, time_seconds=12)
    assert res.status_code in (404, 422), res.json


def test_a_question_attempt_cannot_be_self_reported_right(client: Any, bearer: Any, course: Any, network: Any) -> None:
    """Issue 17 (mastery farming): 'correct: true' without an answer must not count for a
    question of the bank; its answer goes to POST /api/grading, which judges it."""
    attempt_id = _predict(client, bearer, question_id="q-loops-1").json["attempt_id"]
    res = _complete(client, bearer, attempt_id=attempt_id, correct=True, time_seconds=3)
    assert res.status_code == 422 and res.json["error"]["code"] == "grading_required"
    with course.connect() as conn:
        row = conn.execute(sa.text("SELECT status FROM task_attempts")).one()
        assert row[0] == "predicted"  # still open, for the grading function to complete
        assert conn.execute(sa.text("SELECT count(*) FROM mastery_state")).scalar_one() == 0
