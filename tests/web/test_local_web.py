"""The web client's serving rules, without a browser: static files and their headers,
the local-only development sign-in, and the Hosting configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from werkzeug.test import Client

from local.server import HTTP_FUNCTIONS, router_app
from local.web import CSP, WEB_ROOT, dev_mounts, web_app
from shared.config import Settings, get_settings, reset_settings_cache
from shared.http import Router

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def local_env(monkeypatch):
    monkeypatch.setenv("COGNITIVE_ENV", "local")
    reset_settings_cache()
    yield get_settings()
    monkeypatch.undo()
    reset_settings_cache()


def client(settings: Settings) -> Client:
    return Client(web_app(router_app(Router("local")), settings))


def test_static_files_carry_the_strict_csp():
    c = client(get_settings())
    page = c.get("/")
    assert page.status_code == 200 and b'<script type="module" src="/js/app.js">' in page.data
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    js = c.get("/js/app.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    assert c.get("/chat/some/client/route").data == page.data  # the app shell
    assert c.get("/missing.js").status_code == 404
    for escape in ("/../pyproject.toml", "/js/../../pyproject.toml", "/%2e%2e/pyproject.toml"):
        assert b"[project]" not in c.get(escape).data
    api = c.get("/api/nothing-here")  # unknown API paths keep the JSON error shape
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"


def test_config_says_firebase_outside_the_local_environment():
    assert get_settings().environment == "test"
    assert client(get_settings()).get("/config.json").json["auth"]["mode"] == "firebase"
    checked_in = json.loads((WEB_ROOT / "config.json").read_text())
    assert checked_in["auth"]["mode"] == "firebase", "a cloud build must never offer the development sign-in"


def test_dev_sign_in_is_mounted_only_in_the_local_environment(local_env, monkeypatch):
    assert client(local_env).get("/config.json").json["auth"]["mode"] == "dev"
    mounts = dev_mounts(local_env)
    res = Client(mounts["/api/dev"]).post("/token", json={"uid": "ada", "admin": True})
    assert res.status_code == 200
    payload = res.json["token"].split(".")[1]
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "ada" and claims["role"] == "admin"
    assert Client(mounts["/api/dev"]).post("/token", json={"uid": "bad uid!"}).status_code == 422

    monkeypatch.setenv("COGNITIVE_ENV", "cloud")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "")
    reset_settings_cache()
    assert dev_mounts(get_settings()) == {}
    # mounted earlier and the environment changed: the route itself refuses
    refused = Client(mounts["/api/dev"]).post("/token", json={"uid": "ada"})
    # Refused either by the route itself or, before it, by the cloud's fail-closed check
    # (these test settings carry local-only CORS origins and no database).
    assert refused.status_code in (403, 503) and "token" not in refused.json
    assert refused.json["error"]["code"] in ("dev_signin_disabled", "misconfigured")


def test_web_sources_have_no_inline_code_or_markup_injection():
    for html in WEB_ROOT.glob("*.html"):
        text = html.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), html
        assert not re.search(r"\sstyle=|\son[a-z]+=", text), html
    for js in (WEB_ROOT / "js").glob("*.js"):
        text = re.sub(r"^\s*(//|/?\*).*$", "", js.read_text(), flags=re.M)  # code, not comments
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
            assert banned not in text, f"{js.name} uses {banned}"


def test_firebase_hosting_config_matches_the_local_server():
    hosting = json.loads((REPO / "firebase.json").read_text())["hosting"]
    assert hosting["public"] == "web"
    sources = [r["source"] for r in hosting["rewrites"]]
    for name in HTTP_FUNCTIONS:
        assert f"/api/{name}" in sources and f"/api/{name}/**" in sources
    assert sources[-1] == "**" and hosting["rewrites"][-1]["destination"] == "/index.html"
    everywhere = next(block for block in hosting["headers"] if block["source"] == "**")
    headers = {h["key"]: h["value"] for h in everywhere["headers"]}
    csp = headers["Content-Security-Policy"]
    strip = lambda p: re.sub(r"connect-src [^;]*;", "", p)  # noqa: E731 - the cloud adds its API hosts
    assert strip(csp) == strip(CSP)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    cached = {b["source"] for b in hosting["headers"] if any(h["key"] == "Cache-Control" for h in b["headers"])}
    assert "**/*.@(js|css)" in cached


def test_auth_emulator_flow_on_request(local_env, monkeypatch):
    monkeypatch.setenv("WEB_AUTH", "emulator")
    c = client(local_env)
    auth = c.get("/config.json").json["auth"]
    assert auth["mode"] == "firebase" and auth["identityUrl"] == "http://127.0.0.1:9099/identitytoolkit.googleapis.com"
    assert "connect-src 'self' http://127.0.0.1:9099;" in c.get("/").headers["Content-Security-Policy"]
