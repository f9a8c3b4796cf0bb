"""The local server: every HTTP function under /api/<name>, as Hosting rewrites do.

Each function is loaded with functions-framework's own `create_app`, the code
path Cloud Functions runs, and mounted with werkzeug's dispatcher, so a request
to /api/grading/attempts reaches the grading function as /attempts.

Every answer is in the JSON error shape, whatever produces it: the functions'
routers, the health and fallback routers (plain WSGI apps, so any method reaches
them), and the HTTP server itself (a header too large, a malformed request line).
The local server is a local convenience: it refuses to start in the cloud.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.serving import WSGIRequestHandler

from shared.api.models import ResponseBody
from shared.config import get_settings
from shared.health import health
from shared.http import Request, Router
from shared.http.errors import for_status

REPO_ROOT = Path(__file__).resolve().parent.parent
HTTP_FUNCTIONS = ("chat", "grading", "prediction", "feedback")

health_router = Router("health")


class DependencyStatus(BaseModel):
    """One dependency's state; the other keys depend on the dependency (shared/health.py)."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description="ok, or what is wrong (error, not_installed, ...)")


class Health(ResponseBody):
    status: Literal["ok", "degraded"]
    environment: str
    database: DependencyStatus
    models: DependencyStatus
    llm: DependencyStatus


@health_router.get("/", auth=False, response=Health)
def _health(req: Request) -> dict:
    return health(get_settings())


openapi_router = Router("openapi")
_openapi_cache: dict[str, str] = {}


@openapi_router.get("/", auth=False)
def _openapi(req: Request) -> flask.Response:
    """The OpenAPI 3.1 document of every function (shared/http/openapi.py; docs/openapi.json)."""
    if "text" not in _openapi_cache:
        from shared.http.openapi import local_document, render

        _openapi_cache["text"] = render(local_document())
    return flask.Response(_openapi_cache["text"], mimetype="application/json", headers={"Cache-Control": "no-cache"})


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def router_app(router: Router) -> WsgiApp:
    """A router as a WSGI app of its own: every method and path reaches it, so even
    TRACE or an unknown path gets the router's JSON answer (405 with Allow, 404)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return router.handle(flask.Request(environ))(environ, start_response)

    return app


class JsonErrorRequestHandler(WSGIRequestHandler):
    """What the HTTP server answers by itself, before any WSGI app runs (431 for an
    oversized header line, 414, 400 for a malformed request line), in the usual error
    shape with a request id instead of http.server's HTML page."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        request_id = uuid.uuid4().hex
        body = json.dumps(for_status(code).body(request_id)).encode()
        self.log_error("code %d, message %s", code, message)
        self.send_response(code)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", request_id)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD" and code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.wfile.write(body)


def dispatcher(mounts: dict[str, WsgiApp], fallback: WsgiApp) -> WsgiApp:
    """Mount apps under path prefixes. Unlike werkzeug's DispatcherMiddleware,
    `/api/feedback` (no trailing slash) reaches the app as `/`, not a redirect."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, mounted in mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :] or "/"
                return mounted(environ, start_response)
        return fallback(environ, start_response)

    return app


class LocalServerRefused(RuntimeError):
    """The local server was asked to start in the cloud."""


def build_app() -> WsgiApp:
    if get_settings().in_cloud:
        raise LocalServerRefused("the local server (emulator tokens, demo data) does not run in the cloud")
    mounts: dict[str, WsgiApp] = {
        f"/api/{name}": functions_framework.create_app(  # the Cloud Functions code path
            target=name, source=str(REPO_ROOT / "functions" / name / "main.py")
        )
        for name in HTTP_FUNCTIONS
    }
    mounts["/api/health"] = router_app(health_router)
    # The instance's own counters (admin), counted from the log: install after the
    # functions are imported, since their first configure_logging resets the handlers.
    from shared.http import counters

    counters.install()
    mounts["/api/admin/counters"] = router_app(counters.router)
    mounts["/api/openapi.json"] = router_app(openapi_router)
    # The web client and, in the local environment only, its development sign-in (local/web.py);
    # every other path is a 404 in the standard error shape.
    from local.web import dev_mounts, web_app

    mounts.update(dev_mounts(get_settings()))
    return dispatcher(mounts, web_app(router_app(Router("local"))))
