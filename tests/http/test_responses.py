"""Response models: the router checks every success body against its route's model.

Outside the cloud a body that drifted from its model is a 500 `response_invalid` (so
the test that produced it fails); in the cloud it is a warning and the body is sent.
A function with `openapi=True` serves its own document at `/openapi.json`.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import flask
import pytest

from shared.api.models import ResponseBody, ResponseModel
from shared.config import Settings
from shared.http import Request, Router
from shared.http.openapi import render, router_document

SECRET = "do-not-log-this-value"


class Item(ResponseModel):
    id: uuid.UUID
    at: datetime


class Listing(ResponseBody):
    """Two items and a count."""

    count: int
    items: list[Item]


def app_for(router: Router) -> flask.Flask:
    app = flask.Flask(router.name)

    @app.route("/", defaults={"path": ""}, methods=["GET"])
    @app.route("/<path:path>", methods=["GET"])
    def serve(path):
        return router.handle(flask.request)

    return app


def listing_router(body: dict, settings: Settings | None = None) -> Router:
    router = Router("listing", settings=settings, openapi=True)

    @router.get("/items", auth=False, response=Listing)
    def items(req: Request) -> dict:
        return body

    @router.get("/stream", auth=False, response=Listing)
    def stream(req: Request) -> flask.Response:
        return flask.Response("not a listing", mimetype="text/plain")

    return router


GOOD = {"count": 1, "items": [{"id": uuid.uuid4(), "at": datetime(2026, 1, 1, tzinfo=UTC)}]}
DRIFTED = {
    "missing a key": {"items": []},
    "an unknown key": {**GOOD, "extra": SECRET},
    "a wrong type": {"count": SECRET, "items": []},
    "a bad nested value": {"count": 1, "items": [{"id": SECRET, "at": "2026-01-01T00:00:00Z"}]},
}


def test_a_body_that_matches_its_model_is_sent_as_the_handler_made_it():
    response = app_for(listing_router(GOOD)).test_client().get("/items")
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 1 and body["items"][0]["id"] == str(GOOD["items"][0]["id"])
    assert body["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("case", sorted(DRIFTED))
def test_outside_the_cloud_a_drifted_body_is_a_500_naming_the_field_in_the_log(case, caplog):
    with caplog.at_level(logging.WARNING, logger="shared.http"):
        response = app_for(listing_router(DRIFTED[case])).test_client().get("/items")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "response_invalid"
    assert SECRET not in response.get_data(as_text=True)
    records = [r for r in caplog.records if r.getMessage().startswith("response does not match its model Listing")]
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert SECRET not in records[0].getMessage()  # where and what kind, never the value
    assert getattr(records[0], "handler", None) == "items"


def test_in_the_cloud_a_drifted_body_is_a_warning_and_still_answered(monkeypatch, caplog):
    for name, value in {
        "COGNITIVE_ENV": "cloud",
        "GOOGLE_CLOUD_PROJECT": "prod-cc",
        "CLOUD_SQL_INSTANCE": "prod-cc:us-central1:cognitive",
        "DB_IAM_AUTH": "true",
        "DB_USER": "cc-chat@prod-cc.iam",
        "CORS_ORIGINS": "https://prod-cc.web.app",
        "FIREBASE_AUTH_EMULATOR_HOST": "",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("K_SERVICE", "CLOUD_RUN_JOB", "DEBUG", "FLASK_DEBUG", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.in_cloud and settings.cloud_refusals() == []
    with caplog.at_level(logging.WARNING, logger="shared.http"):
        response = app_for(listing_router(DRIFTED["an unknown key"], settings)).test_client().get("/items")
    assert response.status_code == 200
    assert response.get_json()["extra"] == SECRET  # the client gets its answer
    warned = [r for r in caplog.records if r.getMessage().startswith("response does not match its model")]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "extra: extra_forbidden" in warned[0].getMessage()


def test_a_stream_or_other_response_object_is_not_checked():
    response = app_for(listing_router(GOOD)).test_client().get("/stream")
    assert response.status_code == 200 and response.get_data(as_text=True) == "not a listing"


def test_an_error_is_not_checked_against_the_success_model():
    router = Router("refuses")

    @router.get("/", auth=False, response=Listing)
    def refuse(req: Request):
        return {"error": "accepted"}, 409

    response = app_for(router).test_client().get("/")
    assert response.status_code == 409


def test_a_function_serves_its_own_document_without_auth():
    router = listing_router(GOOD)
    client = app_for(router).test_client()
    for path in ("/openapi.json", "/api/listing/openapi.json"):  # alone, and behind Hosting
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "application/json"
        assert response.get_data(as_text=True) == render(router_document(router))
    document = json.loads(client.get("/openapi.json").get_data(as_text=True))
    ok = document["paths"]["/items"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Listing"}
    listing = document["components"]["schemas"]["Listing"]
    assert set(listing["required"]) == {"count", "items", "request_id"}
    assert listing["additionalProperties"] is False
    assert document["components"]["schemas"]["Item"]["properties"]["id"]["format"] == "uuid"
    assert document["servers"][0]["url"] == "/api/listing"


def test_two_models_with_one_name_and_different_schemas_are_refused():
    first = Router("first")
    second = Router("second")

    class Clash(ResponseBody):
        a: int

    @first.get("/", auth=False, response=Clash)
    def one(req: Request) -> dict:
        return {"a": 1}

    class Clash(ResponseBody):  # type: ignore[no-redef]
        b: str

    @second.get("/", auth=False, response=Clash)
    def two(req: Request) -> dict:
        return {"b": "x"}

    from shared.http.openapi import build_document

    with pytest.raises(ValueError, match="Clash"):
        build_document([("/first", first), ("/second", second)])
