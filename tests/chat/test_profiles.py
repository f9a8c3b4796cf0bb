"""Student profiles (grade, level, learning style): set by the student over HTTP, read by
teachers and admins (the full matrix is in tests/drills), and used by the tutor's prompt
book and by content generation (seen in the prompts the generation log records)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.chat.prompt_book import adapt
from shared.personalisation import LEVEL_HINTS, STYLE_HINTS, Profile, grade_hint


def put(client, bearer, body, uid="alice", query=""):
    return client.put(f"/api/feedback/profile{query}", json=body, headers=bearer(uid))


def logged_prompts(engine, task: str) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT prompt, user_id FROM generation_log WHERE task = :t ORDER BY id"), {"t": task}
        )
        return [(r.prompt, r.user_id) for r in rows]


def test_a_student_sets_reads_and_clears_their_profile(client, bearer, course):
    empty = client.get("/api/feedback/profile", headers=bearer("alice"))
    assert empty.status_code == 200
    assert {k: empty.get_json()["profile"][k] for k in ("grade", "level", "learning_style")} == dict.fromkeys(
        ("grade", "level", "learning_style")
    )
    first = put(client, bearer, {"grade": 7, "learning_style": "visual"})
    assert first.status_code == 200, first.get_json()
    assert put(client, bearer, {"level": "intermediate"}).status_code == 200  # the others are kept
    profile = client.get("/api/feedback/profile", headers=bearer("alice")).get_json()["profile"]
    assert (profile["user_id"], profile["grade"], profile["level"], profile["learning_style"]) == (
        "alice",
        7,
        "intermediate",
        "visual",
    )
    assert put(client, bearer, {"grade": None}).get_json()["profile"]["grade"] is None  # null clears


def test_bad_profiles_are_refused_with_422(client, bearer, course):
    for body in (
        {"level": "expert"},
        {"learning_style": "osmosis"},
        {"grade": 13},
        {"grade": 0},
        {"grade": True},
        {"grade": "7"},
        {"nickname": "al"},
    ):
        response = put(client, bearer, body)
        assert response.status_code == 422, (body, response.get_json())
    assert put(client, bearer, {"grade": 3}, query="?user_id=bob").status_code == 403  # not hers
    assert client.get("/api/feedback/profile?user_id=bob", headers=bearer("alice")).status_code == 403


def test_an_admin_reading_an_unknown_student_gets_404(client, bearer, course):
    response = client.get("/api/feedback/profile?user_id=nobody", headers=bearer("root", admin=True))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "user_not_found"


def test_the_behaviour_adapter_uses_the_profile():
    profile = Profile(level="advanced", learning_style="step_by_step", grade=4)
    unmeasured = adapt(False, None, "Loops", profile)
    assert LEVEL_HINTS["advanced"] in unmeasured.extra and STYLE_HINTS["step_by_step"] in unmeasured.extra
    assert grade_hint(4) in unmeasured.extra
    measured = adapt(False, 0.1, "Loops", profile)  # mastery was measured: it decides the level
    assert LEVEL_HINTS["advanced"] not in measured.extra and STYLE_HINTS["step_by_step"] in measured.extra
    assert adapt(False, None, "Loops", None).extra == ()


def test_the_tutor_prompt_follows_the_students_profile(client, bearer, course):
    assert put(client, bearer, {"learning_style": "examples", "grade": 10, "level": "advanced"}).status_code == 200
    turn = client.post("/api/chat", json={"message": "how do I write a for loop?"}, headers=bearer("alice"))
    assert turn.status_code == 200, turn.get_json()
    with course.connect() as conn:
        prompt, user_id = conn.execute(sa.text("SELECT prompt, user_id FROM generation_log ORDER BY id")).first()
    assert STYLE_HINTS["examples"] in prompt and grade_hint(10) in prompt
    assert LEVEL_HINTS["advanced"] in prompt  # no answers on the topic yet: the stated level counts
    assert user_id == "alice"  # the generation log says whom it was for (the per-user budget reads it)


def test_content_uses_the_profile_level_until_mastery_is_measured(client, bearer, course):
    assert put(client, bearer, {"level": "advanced", "learning_style": "visual", "grade": 8}).status_code == 200
    body = client.post(
        "/api/chat/content", json={"topic_id": "py-loops", "kind": "explanation"}, headers=bearer("alice")
    ).get_json()
    assert (body["level"], body["style"]) == ("advanced", "visual")
    (prompt, user_id), *_ = logged_prompts(course, "explanation")
    assert LEVEL_HINTS["advanced"] in prompt and STYLE_HINTS["visual"] in prompt and grade_hint(8) in prompt
    assert user_id == "alice"
    explicit = client.post(
        "/api/chat/content",
        json={"topic_id": "py-loops", "kind": "explanation", "level": "beginner", "style": "verbal"},
        headers=bearer("alice"),
    ).get_json()
    assert (explicit["level"], explicit["style"]) == ("beginner", "verbal")  # the request wins
