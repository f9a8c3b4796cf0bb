"""The local server: every HTTP function under /api/<name>, as Hosting rewrites do.

Each function is loaded with functions-framework's own `create_app`, the code
path Cloud Functions runs, and mounted with werkzeug's dispatcher, so a request
to /api/grading/attempts reaches the grading function as /attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import flask
import functions_framework

from shared.config import get_settings
from shared.health import health
from shared.http import Request, Router

REPO_ROOT = Path(__file__).resolve().parent.parent
HTTP_FUNCTIONS = ("chat", "grading", "prediction", "feedback")

health_router = Router("health")


@health_router.get("/", auth=False)
def _health(req: Request) -> dict:
    return health(get_settings())


def _not_found_app() -> flask.Flask:
    app = flask.Flask("cognitive-core-local")
    fallback = Router("local")  # no routes: every path is a 404 in the standard error shape

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def not_found(path: str) -> flask.Response:
        return fallback.handle(flask.request)

    return app


def _health_app() -> flask.Flask:
    app = flask.Flask("health")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "POST", "OPTIONS"])
    def serve(path: str) -> flask.Response:
        return health_router.handle(flask.request)

    return app


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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


def build_app() -> WsgiApp:
    mounts: dict[str, WsgiApp] = {
        f"/api/{name}": functions_framework.create_app(  # the Cloud Functions code path
            target=name, source=str(REPO_ROOT / "functions" / name / "main.py")
        )
        for name in HTTP_FUNCTIONS
    }
    mounts["/api/health"] = _health_app()
    # The web client and, in the local environment only, its development sign-in (local/web.py).
    from local.web import dev_mounts, web_app

    mounts.update(dev_mounts(get_settings()))
    return dispatcher(mounts, web_app(_not_found_app()))
