"""The web client (`web/`) on the local server, and the local-only development sign-in.

`make run` serves `web/` at http://127.0.0.1:8080/ from the same origin as `/api/`,
with the Content-Security-Policy Firebase Hosting sends (`firebase.json`). Two things
exist only here, never in a cloud build:

- `GET /config.json` answers with the local client configuration (development
  sign-in, same-origin streaming) instead of the checked-in production `web/config.json`;
- `POST /api/dev/token {uid, admin?}` mints a Firebase Auth *emulator* token (unsigned,
  accepted only in emulator mode) for the development sign-in. It is mounted only when
  the settings say `COGNITIVE_ENV=local` with `FIREBASE_AUTH_EMULATOR_HOST` set, and
  refuses every request otherwise. `local/` is not part of any deployed zip.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import flask
from pydantic import Field

from shared.api.models import StrictModel
from shared.config import Settings, get_settings
from shared.http import ApiError, Request, Router

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

# The same policy as firebase.json, minus the cloud hosts (same origin locally).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def dev_signin_enabled(settings: Settings) -> bool:
    return settings.environment == "local" and bool(settings.auth_emulator_host)


def _emulator_origin(settings: Settings) -> str | None:
    """The Auth emulator's origin when `WEB_AUTH=emulator` asks for its sign-in flow."""
    if os.environ.get("WEB_AUTH", "").lower() != "emulator" or not settings.auth_emulator_host:
        return None
    return f"http://{settings.auth_emulator_host}"


def local_client_config(settings: Settings) -> dict[str, Any]:
    """What `web/config.json` says in a deployment, for the local server."""
    emulator = _emulator_origin(settings)
    if emulator:  # Firebase Auth's own flow, against the emulator (firebase emulators:start --only auth)
        auth: dict[str, Any] = {
            "mode": "firebase",
            "apiKey": "fake-api-key",  # the emulator accepts any key
            "identityUrl": f"{emulator}/identitytoolkit.googleapis.com",
            "tokenUrl": f"{emulator}/securetoken.googleapis.com",
        }
    else:
        auth = {"mode": "dev" if dev_signin_enabled(settings) else "firebase"}
    return {
        "apiBase": "/api",
        "streamUrl": "/api/chat",  # werkzeug does not buffer: stream on the same origin
        "auth": auth,
        "environment": settings.environment,
    }


def csp_for(settings: Settings) -> str:
    emulator = _emulator_origin(settings)
    return CSP.replace("connect-src 'self'", f"connect-src 'self' {emulator}") if emulator else CSP


# -- development sign-in ---------------------------------------------------------------
dev_router = Router("dev")


class DevTokenIn(StrictModel):
    uid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    admin: bool = False


@dev_router.post("/token", auth=False, body=DevTokenIn)
def _dev_token(req: Request) -> dict:
    settings = get_settings()
    if not dev_signin_enabled(settings):  # belt and braces: it is not mounted then either
        raise ApiError(403, "dev_signin_disabled", "Development sign-in exists only on the local stack.")
    from local.tokens import mint_emulator_token

    expires_in = 8 * 3600
    token = mint_emulator_token(req.body.uid, settings.project_id, admin=req.body.admin, expires_in=expires_in)
    return {"token": token, "uid": req.body.uid, "admin": req.body.admin, "expires_in": expires_in}


def dev_mounts(settings: Settings) -> dict[str, WsgiApp]:
    """`/api/dev` when the local environment allows it, else nothing (a 404 as any unknown route)."""
    if not dev_signin_enabled(settings):
        return {}
    app = flask.Flask(f"{__name__}.dev")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "POST", "OPTIONS"])
    def serve(path: str) -> flask.Response:
        return dev_router.handle(flask.request)

    return {"/api/dev": app}


# -- static files ----------------------------------------------------------------------
def web_app(api_fallback: WsgiApp, settings: Settings | None = None) -> WsgiApp:
    """`web/` for every path outside /api (unknown API paths keep the JSON 404)."""
    app = flask.Flask(__name__, static_folder=None)

    def finish(response: flask.Response, cache: str) -> flask.Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = csp_for(settings or get_settings())
        response.headers["Cache-Control"] = cache
        return response

    @app.get("/config.json")
    def config() -> flask.Response:
        body = json.dumps(local_client_config(settings or get_settings()))
        return finish(flask.Response(body, mimetype="application/json"), "no-store")

    @app.get("/", defaults={"path": "index.html"})
    @app.get("/<path:path>")
    def static_file(path: str) -> flask.Response:
        target = (WEB_ROOT / path).resolve()
        if WEB_ROOT not in target.parents or not target.is_file():
            if "." in Path(path).name:  # a missing asset is a 404, not the app shell
                return finish(flask.Response("Not found\n", status=404, mimetype="text/plain"), "no-store")
            target = WEB_ROOT / "index.html"  # client-side routes get the shell
        mimetype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            mimetype = "text/javascript"
        response = flask.Response(target.read_bytes(), mimetype=mimetype)
        # Locally every file revalidates, so an edit shows on reload (Hosting: firebase.json).
        return finish(response, "no-cache")

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        # The web client is read-only: any other method, like any unknown API path, gets
        # the API's JSON error (never Flask's HTML 405).
        if path == "/api" or path.startswith("/api/") or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return api_fallback(environ, start_response)
        return app(environ, start_response)

    return dispatch
