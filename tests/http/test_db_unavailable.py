"""Issue 8 item 6: a database that cannot be reached is a 503 with Retry-After and
the request id, logged once with its cause; a bug in SQL stays a 500."""

from __future__ import annotations

import logging
import uuid

import flask
import pg8000.exceptions
import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from shared.http import Request, Router
from shared.http.router import _database_unreachable


@pytest.fixture()
def unreachable(monkeypatch):
    """The process engine points at a port nothing listens on."""
    import shared.db.engine as engine_module

    bad = sa.create_engine("postgresql+pg8000://u:p@127.0.0.1:1/x", pool_pre_ping=True)
    monkeypatch.setattr(engine_module, "_engine", bad)
    yield bad
    bad.dispose()


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/chat/topics", None),
        ("GET", "/api/grading/attempts", None),
        ("POST", "/api/feedback", {"interaction_id": str(uuid.uuid4()), "score": 1}),
    ],
)
def test_unreachable_database_is_503_with_retry_after(client, bearer, unreachable, caplog, method, path, body):
    with caplog.at_level(logging.INFO):
        response = client.open(path, method=method, json=body, headers=bearer("alice"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    err = response.get_json()["error"]
    assert err["code"] == "database_unavailable"
    assert err["request_id"] == response.headers["X-Request-Id"]
    assert "127.0.0.1" not in response.get_data(as_text=True)  # no internal detail
    causes = [r for r in caplog.records if r.getMessage() == "database unreachable"]
    assert len(causes) == 1 and "InterfaceError" in causes[0].cause
    assert causes[0].request_id == err["request_id"]
    assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]


def test_a_bug_in_sql_is_still_a_500(db, caplog):
    router = Router("buggy")

    @router.get("/q", auth=False)
    def q(req: Request) -> dict:
        with db.connect() as conn:
            conn.execute(sa.text("SELEC 1"))
        return {}

    app = flask.Flask("buggy")
    app.add_url_rule("/q", view_func=lambda: router.handle(flask.request))
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/q")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal"
    assert any(r.getMessage() == "unhandled error" for r in caplog.records)


def _server_error(sqlstate: str) -> sa_exc.DBAPIError:
    orig = pg8000.exceptions.DatabaseError({"S": "FATAL", "C": sqlstate, "M": "server says no"})
    return sa_exc.DBAPIError.instance("SELECT 1", {}, orig, pg8000.exceptions.Error)


@pytest.mark.parametrize(
    "sqlstate, unavailable",
    [
        ("57P03", True),  # the database system is starting up
        ("57P01", True),  # terminating connection due to administrator command
        ("53300", True),  # too many connections
        ("08006", True),  # connection failure
        ("42601", False),  # syntax error: a bug, not an outage
        ("23505", False),  # unique violation
    ],
)
def test_server_side_unavailability_is_recognised_by_sqlstate(sqlstate, unavailable):
    assert _database_unreachable(_server_error(sqlstate)) is unavailable


def test_pool_exhaustion_and_wrapped_causes_count_as_unavailable():
    assert _database_unreachable(sa_exc.TimeoutError("QueuePool limit reached"))
    try:
        try:
            raise sa_exc.TimeoutError("QueuePool limit reached")
        except sa_exc.TimeoutError as inner:
            raise RuntimeError("while loading the course") from inner
    except RuntimeError as outer:
        assert _database_unreachable(outer)
    assert not _database_unreachable(ValueError("nothing to do with the database"))
