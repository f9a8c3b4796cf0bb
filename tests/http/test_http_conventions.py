"""The conventions every function applies, checked through the local server's
dispatcher (the same WSGI apps functions-framework builds for Cloud Functions)."""

from __future__ import annotations

import io
import json
import logging
import uuid

import flask
import pytest

from shared.http import ApiError, Request, Router
from shared.logs import JsonFormatter

ALLOWED_ORIGIN = "https://app.example.com"


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message", "request_id"} <= set(err)
    assert err["request_id"] == response.headers["X-Request-Id"]
    return err


def test_unknown_route_is_404_with_error_shape(client):
    # "/" is the web client now (local/web.py); every unknown path under /api stays a JSON 404.
    for path in ("/api/nope", "/api/chat/nope", "/api", "/api/grading/attempts/extra"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_405_with_allow_header(client, bearer):
    response = client.delete("/api/chat/topics", headers=bearer("alice"))
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(client, bearer, db):
    response = client.post(
        "/api/feedback", data="{not json", headers={**bearer("alice"), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_empty_body_is_400(client, bearer, db):
    response = client.post("/api/feedback", data="", headers={**bearer("alice"), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_non_json_content_type_is_415(client, bearer, db):
    response = client.post("/api/feedback", data="score=1", headers={**bearer("alice"), "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "body, bad_loc",
    [
        ({"score": 1}, ["body", "interaction_id"]),
        ({"interaction_id": "not-a-uuid", "score": 1}, ["body", "interaction_id"]),
        ({"interaction_id": str(uuid.uuid4()), "score": 5}, ["body", "score"]),
        # An unknown field is reported at the object holding it: its name is the client's input.
        ({"interaction_id": str(uuid.uuid4()), "score": 1, "surprise": True}, ["body"]),
        ([1, 2, 3], ["body"]),
    ],
)
def test_schema_violation_is_422_with_field_details(client, bearer, db, body, bad_loc):
    response = client.post("/api/feedback", json=body, headers=bearer("alice"))
    assert response.status_code == 422
    err = error_of(response)
    assert err["code"] == "validation_error"
    locs = [d["loc"] for d in err["details"]]
    assert bad_loc in locs
    # The client's input is never echoed back in validation details.
    assert all("input" not in d for d in err["details"])
    assert "surprise" not in response.get_data(as_text=True)


def test_query_violation_is_422(client, bearer, db):
    response = client.get("/api/grading/attempts?limit=0", headers=bearer("alice"))
    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == ["query", "limit"]


def test_oversized_body_is_413(client, bearer, settings):
    big = json.dumps({"comment": "x" * (settings.max_request_bytes + 10)})
    response = client.post("/api/feedback", data=big, headers={**bearer("alice"), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_oversized_chunked_body_is_413(client, bearer, settings):
    """No Content-Length (a chunked body the server has de-chunked): the limit
    still holds while the body is read."""
    big = b'{"comment": "' + b"y" * (settings.max_request_bytes + 10) + b'"}'
    response = client.post(
        "/api/feedback",
        input_stream=io.BytesIO(big),
        headers={**bearer("alice"), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_request_id_on_success_and_echoed_when_supplied(client, bearer, db):
    response = client.get("/api/chat/topics", headers={**bearer("alice"), "X-Request-Id": "client-req-0001"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "client-req-0001"
    assert response.get_json()["request_id"] == "client-req-0001"


def test_unsafe_supplied_request_id_is_replaced(client):
    for supplied in ("bad id with spaces", "<script>", "x" * 200):
        response = client.get("/api/health", headers={"X-Request-Id": supplied})
        rid = response.headers["X-Request-Id"]
        assert rid != supplied and len(rid) == 32


def test_cors_preflight_for_allowed_origin(client):
    response = client.open(
        "/api/feedback",
        method="OPTIONS",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Vary"] == "Origin"


def test_cors_preflight_for_other_origin_is_refused(client):
    response = client.open(
        "/api/feedback",
        method="OPTIONS",
        headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert error_of(response)["code"] == "cors_origin_not_allowed"


def test_cors_headers_on_actual_responses_only_for_allowed_origins(client, bearer, db):
    ok = client.get("/api/chat/topics", headers={**bearer("alice"), "Origin": ALLOWED_ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Request-Id" in ok.headers["Access-Control-Expose-Headers"]
    # Errors carry CORS headers too, or the browser hides the error body from the app.
    unauth = client.get("/api/chat/topics", headers={"Origin": ALLOWED_ORIGIN})
    assert unauth.status_code == 401
    assert unauth.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    other = client.get("/api/chat/topics", headers={**bearer("alice"), "Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in other.headers


def _router_app(router: Router) -> flask.Flask:
    app = flask.Flask("t")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def serve(path):
        return router.handle(flask.request)

    return app


def test_unhandled_exception_is_500_without_stack_trace(caplog):
    router = Router("boom")

    @router.get("/crash", auth=False)
    def crash(req: Request) -> dict:
        raise RuntimeError("secret internal detail /etc/passwd")

    with caplog.at_level(logging.ERROR, logger="shared.http"):
        response = _router_app(router).test_client().get("/crash")
    assert response.status_code == 500
    err = error_of(response)
    assert err["code"] == "internal"
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text and "Traceback" not in text
    # ...but the log has it, with the request id, for the developer.
    records = [r for r in caplog.records if r.exc_info]
    assert records and "secret internal detail" in JsonFormatter().format(records[0])
    assert json.loads(JsonFormatter().format(records[0]))["request_id"] == err["request_id"]


def test_api_error_status_and_extra_headers_pass_through():
    router = Router("busy")

    @router.get("/busy", auth=False)
    def busy(req: Request) -> dict:
        raise ApiError(503, "unavailable", "try later", headers={"Retry-After": "5"})

    response = _router_app(router).test_client().get("/busy")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert error_of(response)["message"] == "try later"


def test_router_accepts_hosting_prefixed_paths():
    """Behind Firebase Hosting the function sees /api/<name>/...; deployed alone, /..."""
    router = Router("echo")

    @router.get("/ping", auth=False)
    def ping(req: Request) -> dict:
        return {"pong": True}

    c = _router_app(router).test_client()
    assert c.get("/ping").status_code == 200
    assert c.get("/api/echo/ping").status_code == 200
    assert c.get("/api/other/ping").status_code == 404


def test_access_log_is_structured_json_with_request_id(client, capsys):
    from shared.logs import configure_logging

    configure_logging()
    response = client.get("/api/nope", headers={"X-Request-Id": "log-check-00001"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    entry = next(e for e in lines if e.get("request_id") == "log-check-00001")
    assert entry["severity"] == "INFO"
    assert entry["httpRequest"]["status"] == response.status_code == 404
    assert entry["httpRequest"]["requestMethod"] == "GET"


def test_trace_header_links_log_lines_to_the_trace(capsys):
    from shared.logs import configure_logging

    configure_logging()
    router = Router("trace")

    @router.get("/t", auth=False)
    def t(req: Request) -> dict:
        logging.getLogger("handler").info("inside")
        return {}

    _router_app(router).test_client().get("/t", headers={"X-Cloud-Trace-Context": "abc123/1;o=1"})
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    inside = next(e for e in lines if e["message"] == "inside")
    assert inside["logging.googleapis.com/trace"].endswith("/traces/abc123")
    assert inside["request_id"]
