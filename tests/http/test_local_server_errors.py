"""What the local HTTP server answers by itself (before any WSGI app runs) is in the
JSON error shape too: a header line too large for the server is a JSON 431."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from local.server import JsonErrorRequestHandler


@pytest.fixture()
def base_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=JsonErrorRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_header_too_large_for_the_server_is_a_json_431(base_url):
    response = requests.get(
        f"{base_url}/api/chat/topics", headers={"Authorization": "Bearer " + "a" * 70_000}, timeout=30
    )
    assert response.status_code == 431
    assert response.headers["Content-Type"] == "application/json"
    err = response.json()["error"]
    assert err["code"] == "request_header_fields_too_large"
    assert err["request_id"] == response.headers["X-Request-Id"]


def test_large_authorization_header_under_the_server_limit_is_a_json_401(base_url):
    response = requests.get(
        f"{base_url}/api/chat/topics", headers={"Authorization": "Bearer " + "a" * 50_000}, timeout=30
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_health_and_unknown_paths_over_a_real_socket(base_url):
    assert requests.request("TRACE", f"{base_url}/api/health", timeout=30).json()["error"]["code"] == (
        "method_not_allowed"
    )
    missing = requests.get(f"{base_url}/api/chat/favicon.ico", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_malformed_request_line_is_a_json_400(base_url):
    import json
    import socket

    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /api/health extra HTTP/1.1\r\n\r\n")  # one word too many
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"
