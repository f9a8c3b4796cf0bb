"""Issue 17, "Crashes and leaks on bad input": each of these was a 500 or broke the
error shape. They go through the local server's dispatcher and the functions'
real routers, so the fixes are checked where clients meet them."""

from __future__ import annotations

import json
import time
import uuid

import pytest

MARK = "ZQXmarker"  # client input that must never come back in a reply


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message", "request_id"} <= set(err)
    assert err["request_id"] == response.headers["X-Request-Id"]
    return err


@pytest.fixture()
def course(demo_course):
    return demo_course


# --- NUL characters --------------------------------------------------------------------
NUL_BODIES = [
    ("/api/chat", {"message": f"hello{MARK}\u0000"}, "message"),
    ("/api/chat", {"message": "hello", "topic_id": f"t{MARK}\u0000"}, "topic_id"),
    ("/api/chat/content", {"topic_id": f"t{MARK}\u0000", "kind": "explanation"}, "topic_id"),
    ("/api/chat/content", {"topic_id": "t", "kind": "quiz", "focus": f"f{MARK}\u0000"}, "focus"),
    ("/api/grading", {"question_id": f"q{MARK}\u0000", "answer": "x"}, "question_id"),
    ("/api/grading", {"question_id": "q", "answer": f"a{MARK}\u0000"}, "answer"),
    ("/api/prediction", {"topic_id": f"t{MARK}\u0000", "difficulty": 2}, "topic_id"),
    ("/api/prediction", {"question_id": f"q{MARK}\u0000"}, "question_id"),
    ("/api/prediction/complete", {"attempt_id": f"a{MARK}\u0000", "correct": True, "time_seconds": 3}, "attempt_id"),
    ("/api/feedback", {"interaction_id": str(uuid.uuid4()), "score": 1, "comment": f"c{MARK}\u0000"}, "comment"),
]


@pytest.mark.parametrize("path, body, field", NUL_BODIES)
def test_nul_in_a_body_string_is_422_naming_the_field_not_the_value(client, bearer, path, body, field):
    response = client.post(path, json=body, headers=bearer("alice"))
    err = error_of(response, 422)
    assert err["code"] == "validation_error"
    assert {"loc": ["body", field], "msg": err["details"][0]["msg"], "type": "string_nul"} in err["details"]
    assert MARK not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/grading/attempts", "/api/prediction/mastery"])
def test_nul_in_a_query_value_is_422(client, bearer, path):
    response = client.get(f"{path}?user_id=al%00{MARK}", headers=bearer("root", admin=True))
    err = error_of(response, 422)
    assert [d["loc"] for d in err["details"]] == [["query", "user_id"]]
    assert MARK not in response.get_data(as_text=True)


def test_nul_in_a_known_query_value_is_reported_at_that_field(client, bearer):
    response = client.get(f"/api/grading/attempts?user_id=al%00{MARK}", headers=bearer("root", admin=True))
    err = error_of(response, 422)
    assert err["details"] == [
        {"loc": ["query", "user_id"], "msg": "must not contain NUL (U+0000) characters", "type": "string_nul"}
    ]


def test_chat_with_nul_saves_nothing_and_reports_no_database_outage(client, bearer, db, caplog):
    import sqlalchemy as sa

    response = client.post("/api/chat", json={"message": "what is a list?\u0000"}, headers=bearer("alice"))
    error_of(response, 422)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM chat_messages")).scalar() == 0
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


# --- JSON nesting ----------------------------------------------------------------------
POST_ROUTES = [
    "/api/chat",
    "/api/chat/content",
    "/api/grading",
    "/api/prediction",
    "/api/prediction/complete",
    "/api/feedback",
    "/api/feedback/label",
]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_json_nested_thousands_deep_is_400(client, bearer, path):
    # 7000 levels: far past Python's recursion limit, under the tests' 16 KB body limit.
    deep = "[" * 7000 + "]" * 7000
    response = client.post(path, data=deep, headers={**bearer("root", admin=True), "Content-Type": "application/json"})
    assert error_of(response, 400)["code"] == "invalid_json"


def test_json_nested_deeper_than_the_cap_is_400_even_within_the_recursion_limit(client, bearer):
    body = {"comment": "x"}
    for _ in range(40):
        body = {"a": body}
    response = client.post("/api/feedback", json=body, headers=bearer("alice"))
    assert error_of(response, 400)["code"] == "invalid_json"


# --- integers beyond a bigint ------------------------------------------------------------
def test_offset_beyond_bigint_is_422(client, bearer):
    response = client.get("/api/feedback/review-queue?offset=9223372036854775808", headers=bearer("root", admin=True))
    err = error_of(response, 422)
    assert err["details"][0]["loc"] == ["query", "offset"]


def test_huge_integer_in_a_body_is_422_not_a_database_error(client, bearer, course):
    response = client.post("/api/grading", json={"question_id": "q", "answer": 10**30}, headers=bearer("alice"))
    err = error_of(response, 422)
    assert err["details"][0]["loc"] == ["body", "answer"]


# --- paths ---------------------------------------------------------------------------------
def test_double_slashes_are_one_slash(client, bearer, db):
    response = client.get("/api/chat/topics//", headers=bearer("alice"))
    assert response.status_code == 200
    missing = client.get(f"/api/chat/sessions/{uuid.uuid4()}//messages", headers=bearer("alice"))
    assert error_of(missing, 404)["code"] == "not_found"
    assert client.get("/api/chat//topics", headers=bearer("alice")).status_code == 200


@pytest.mark.parametrize("path", ["/api/chat/favicon.ico", "/api/grading/robots.txt", "/api/chat/nope.html"])
def test_unknown_paths_are_json_404(client, bearer, path):
    response = client.get(path, headers=bearer("alice"))
    assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "TRACE", "FOO"])
def test_other_methods_on_health_are_json_405(client, method):
    response = client.open("/api/health", method=method)  # no X-Request-Id sent
    err = error_of(response, 405)
    assert err["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert len(response.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize("method", ["TRACE", "FOO"])
def test_other_methods_on_a_function_are_json_405(client, bearer, method):
    response = client.open("/api/chat/topics", method=method, headers=bearer("alice"))
    assert error_of(response, 405)["code"] == "method_not_allowed"


def test_unknown_path_outside_the_functions_is_json_404_for_any_method(client):
    for method in ("GET", "TRACE", "PROPFIND"):
        assert error_of(client.open("/api/nope", method=method), 404)["code"] == "not_found"
    # Outside /api the web client answers GET (its shell, for client-side routes); any
    # other method gets the same JSON error, never an HTML page.
    for method in ("TRACE", "PROPFIND", "POST", "DELETE"):
        assert error_of(client.open("/nope", method=method), 404)["code"] == "not_found"


# --- input echoed back -----------------------------------------------------------------------
def test_no_route_does_not_repeat_the_path(client):
    path = "/api/chat/" + MARK + "x" * 10_000
    response = client.get(path)
    error_of(response, 404)
    assert MARK not in response.get_data(as_text=True)
    assert len(response.get_data()) < 500


def test_cors_refusal_does_not_repeat_the_origin(client):
    response = client.open(
        "/api/feedback",
        method="OPTIONS",
        headers={"Origin": f"https://{MARK}.example.net", "Access-Control-Request-Method": "POST"},
    )
    error_of(response, 403)
    assert MARK not in response.get_data(as_text=True)


def test_unparsable_uuid_is_not_quoted_back(client, bearer):
    response = client.post("/api/feedback", json={"interaction_id": f"{MARK}", "score": 1}, headers=bearer("alice"))
    err = error_of(response, 422)
    assert err["details"][0]["loc"] == ["body", "interaction_id"]
    assert "Z" not in err["details"][0]["msg"] and MARK not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/chat/content", {"topic_id": MARK, "kind": "explanation"}),
        ("/api/grading", {"question_id": MARK, "answer": "an answer"}),
        ("/api/prediction", {"topic_id": MARK, "difficulty": 2}),
        ("/api/prediction", {"question_id": MARK}),
        ("/api/prediction/complete", {"attempt_id": MARK, "correct": True, "time_seconds": 3}),
    ],
)
def test_not_found_messages_do_not_repeat_the_id(client, bearer, course, path, body):
    response = client.post(path, json=body, headers=bearer("alice"))
    assert error_of(response, 404)["code"] == "not_found"
    assert MARK not in response.get_data(as_text=True)


def test_unknown_session_message_does_not_repeat_the_id(client, bearer, db):
    session = uuid.uuid4()
    response = client.get(f"/api/chat/sessions/{session}/messages", headers=bearer("alice"))
    error_of(response, 404)
    assert str(session) not in response.get_data(as_text=True)


# --- strict types ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/feedback", {"interaction_id": str(uuid.uuid4()), "score": True}, "score"),
        ("/api/prediction", {"topic_id": "t", "difficulty": True}, "difficulty"),
        ("/api/chat/content", {"topic_id": "t", "kind": "quiz", "questions": True}, "questions"),
        ("/api/grading", {"question_id": "q", "answer": "x", "time_seconds": True}, "time_seconds"),
        ("/api/prediction/complete", {"attempt_id": "a", "correct": True, "time_seconds": True}, "time_seconds"),
        ("/api/grading", {"question_id": 12, "answer": "x"}, "question_id"),
        ("/api/prediction", {"topic_id": "t", "difficulty": "2"}, "difficulty"),
        ("/api/feedback", {"interaction_id": str(uuid.uuid4()), "score": 1.0}, "score"),
    ],
)
def test_body_types_are_strict(client, bearer, path, body, field):
    response = client.post(path, json=body, headers=bearer("alice"))
    err = error_of(response, 422)
    assert ["body", field] in [d["loc"] for d in err["details"]]


def test_strict_bodies_still_take_json_numbers_and_uuid_strings(client, bearer, course):
    # time_seconds is a float: an integer is a number too; a UUID arrives as a string.
    response = client.post(
        "/api/prediction/complete",
        json={"attempt_id": str(uuid.uuid4()), "correct": False, "time_seconds": 12},
        headers=bearer("alice"),
    )
    assert error_of(response, 404)["code"] == "not_found"  # validated, then not found


def test_query_strings_are_still_parsed_into_numbers(client, bearer, db):
    response = client.get("/api/feedback/review-queue?limit=5&offset=10", headers=bearer("root", admin=True))
    assert response.status_code == 200


# --- tokens from the future ---------------------------------------------------------------
def test_token_issued_in_the_future_is_401(client, token):
    future = token("alice", issued_at=time.time() + 365 * 86400, expires_in=3600)
    response = client.get("/api/chat/topics", headers={"Authorization": f"Bearer {future}"})
    assert error_of(response, 401)["code"] == "unauthenticated"


def test_token_with_only_iat_in_the_future_is_401(client, token):
    now = time.time()
    forged = token("alice", issued_at=now, extra_claims={"iat": int(now) + 365 * 86400})
    response = client.get("/api/chat/topics", headers={"Authorization": f"Bearer {forged}"})
    assert error_of(response, 401)["code"] == "unauthenticated"


def test_oversized_token_is_401_without_parsing(client):
    response = client.get("/api/chat/topics", headers={"Authorization": "Bearer " + "a" * 50_000})
    assert error_of(response, 401)["code"] == "unauthenticated"


def test_json_error_body_is_compact(client):
    # The error shape is one small object, whatever the request looked like.
    response = client.get("/api/chat/" + "y" * 5000)
    assert len(json.dumps(response.get_json())) < 300


def test_the_reported_10000_level_body_under_a_64_kb_limit_is_400(settings):
    """The issue's case exactly: about 60 KB of nesting, under the production limit."""
    import flask

    from shared.api.models import StrictModel
    from shared.http import Request, Router

    class Body(StrictModel):
        comment: str | None = None

    router = Router("deep", settings=settings.model_copy(update={"max_request_bytes": 64 * 1024}))

    @router.post("/", auth=False, body=Body)
    def accept(req: Request) -> dict:
        return {}

    app = flask.Flask("deep")
    app.add_url_rule("/", view_func=lambda: router.handle(flask.request), methods=["POST"])
    deep = "[" * 10_000 + "]" * 10_000
    assert 19_000 < len(deep) < 64 * 1024
    response = app.test_client().post("/", data=deep, headers={"Content-Type": "application/json"})
    assert error_of(response, 400)["code"] == "invalid_json"
    objects = '{"a":' * 10_000 + "1" + "}" * 10_000  # 60 KB
    response = app.test_client().post("/", data=objects, headers={"Content-Type": "application/json"})
    assert error_of(response, 400)["code"] == "invalid_json"
