"""The HTTP conventions of every function, applied in one place.

A function's `main.py` builds a `Router`, declares its routes with their auth
requirement and pydantic models, and hands each Flask request to
`router.handle`. Everything a client can rely on happens here: request id,
CORS, body size limit, routing (404/405), authentication and roles, JSON
parsing (400/415), validation (422), the error shape, and one access log line
per request. Handlers only see validated input and a verified principal.

Paths: behind Firebase Hosting a function sees the whole path
(`/api/grading/grade`), deployed alone it sees `/grade`, and under the local
server's dispatcher it sees `/grade` too; the router accepts all three.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import flask
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule

from shared.config import Settings, get_settings
from shared.http.auth import Principal, verify_bearer
from shared.http.errors import ApiError, bad_request
from shared.logs import request_id_var, trace_var

log = logging.getLogger("shared.http")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-Id, Accept"

HandlerResult = dict[str, Any] | tuple[dict[str, Any], int] | flask.Response
Handler = Callable[["Request"], HandlerResult]


@dataclass
class Request:
    """What a handler receives: validated input and who is asking."""

    raw: flask.Request
    request_id: str
    principal: Principal | None
    path_params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    query: Any = None

    @property
    def user(self) -> Principal:
        """The caller, for routes that require auth (always set there)."""
        assert self.principal is not None, "route declared auth=False"
        return self.principal

    def wants_event_stream(self) -> bool:
        return "text/event-stream" in (self.raw.headers.get("Accept") or "")


@dataclass(frozen=True)
class Route:
    handler: Handler
    auth: bool
    admin: bool
    body: type[BaseModel] | None
    query: type[BaseModel] | None


class Router:
    """Routes of one function, and the conventions around them."""

    def __init__(self, name: str, settings: Settings | None = None) -> None:
        self.name = name
        self._settings = settings
        self._rules = Map(strict_slashes=False, merge_slashes=True)
        self._routes: dict[str, Route] = {}

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    # -- declaring routes ------------------------------------------------------
    def route(
        self,
        methods: Iterable[str],
        path: str,
        *,
        auth: bool = True,
        admin: bool = False,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{len(self._routes)}"
            self._rules.add(Rule(path, endpoint=endpoint, methods=[m.upper() for m in methods]))
            self._routes[endpoint] = Route(handler, auth or admin, admin, body, query)
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["GET"], path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["POST"], path, **kw)

    # -- serving -----------------------------------------------------------------
    def handle(self, request: flask.Request) -> flask.Response:
        """Entry point: every function's handler is `return router.handle(request)`."""
        started = time.perf_counter()
        request_id = self._request_id(request)
        rid_token = request_id_var.set(request_id)
        trace_token = trace_var.set(self._trace(request))
        origin = request.headers.get("Origin")
        cors_ok = self._origin_allowed(origin)
        try:
            response = self._dispatch(request, request_id, origin, cors_ok)
        except ApiError as exc:
            response = self._json(exc.body(request_id), exc.status, exc.headers)
        except Exception:
            log.exception("unhandled error", extra={"path": request.path, "request_id": request_id})
            err = ApiError(500, "internal", "Internal error; the request id identifies it in the logs.")
            response = self._json(err.body(request_id), 500)
        finally:
            request_id_var.reset(rid_token)
            trace_var.reset(trace_token)

        response.headers["X-Request-Id"] = request_id
        if cors_ok and origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
            response.headers["Vary"] = "Origin"
        self._access_log(request, response, request_id, started)
        return response

    def _dispatch(self, request: flask.Request, request_id: str, origin: str | None, cors_ok: bool) -> flask.Response:
        path = self._local_path(request.path)
        adapter = self._rules.bind("localhost")

        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return self._preflight(adapter, path, origin, cors_ok)

        try:
            endpoint, path_params = adapter.match(path, method=request.method)
        except NotFound:
            raise ApiError(404, "not_found", f"No route {request.method} {request.path}.") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise ApiError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; allowed: {allowed}.",
                headers={"Allow": allowed},
            ) from None
        route = self._routes[endpoint]

        self._check_size(request)
        principal = None
        if route.auth:
            principal = verify_bearer(request.headers.get("Authorization"), self.settings)
            if route.admin:
                principal.require_admin()

        ctx = Request(request, request_id, principal, path_params)
        if route.query is not None:
            ctx.query = self._validate(route.query, request.args.to_dict(), "query")
        if route.body is not None:
            ctx.body = self._validate(route.body, self._json_body(request), "body")

        result = route.handler(ctx)
        if isinstance(result, flask.Response):
            return result
        status = 200
        if isinstance(result, tuple):
            result, status = result
        if isinstance(result, dict):
            result = {**result, "request_id": request_id}
        return self._json(result, status)

    # -- pieces --------------------------------------------------------------------
    def _local_path(self, path: str) -> str:
        prefix = f"/api/{self.name}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        return path or "/"

    def _check_size(self, request: flask.Request) -> None:
        limit = self.settings.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            raise self._too_large(limit)
        # For a streamed (chunked) body werkzeug stops reading at max_content_length
        # without an error; reading one byte more tells "exactly at the limit" from "over".
        request.max_content_length = limit + 1
        try:
            data = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise self._too_large(limit) from None
        if len(data) > limit:
            raise self._too_large(limit)

    @staticmethod
    def _too_large(limit: int) -> ApiError:
        return ApiError(413, "payload_too_large", f"Request body exceeds {limit} bytes.")

    @staticmethod
    def _json_body(request: flask.Request) -> Any:
        mimetype = request.mimetype or ""
        if not (mimetype == "application/json" or mimetype.endswith("+json")):
            raise ApiError(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
        raw = request.get_data(cache=True)
        if not raw.strip():
            raise bad_request("The request body is empty; a JSON object is required.", "invalid_json")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}.", "invalid_json") from None

    @staticmethod
    def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            details = [
                {"loc": [where, *exc_loc], "msg": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False, include_input=False)
                for exc_loc in [list(err["loc"])]
            ]
            first = details[0]
            where_txt = ".".join(str(p) for p in first["loc"])
            raise ApiError(
                422, "validation_error", f"Invalid {where}: {where_txt}: {first['msg']}", details=details
            ) from None

    def _preflight(self, adapter: Any, path: str, origin: str | None, cors_ok: bool) -> flask.Response:
        if not cors_ok:
            raise ApiError(403, "cors_origin_not_allowed", f"Origin {origin!r} is not allowed.")
        try:
            methods = adapter.allowed_methods(path)
        except NotFound:
            methods = []
        if not methods:
            raise ApiError(404, "not_found", f"No route {path}.")
        response = flask.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(set(methods) | {"OPTIONS"}))
        response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "3600"
        return response

    def _origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        allowed = self.settings.cors_origins
        return "*" in allowed or origin in allowed

    @staticmethod
    def _request_id(request: flask.Request) -> str:
        supplied = request.headers.get("X-Request-Id", "")
        return supplied if _REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex

    def _trace(self, request: flask.Request) -> str | None:
        header = request.headers.get("X-Cloud-Trace-Context")
        if not header:
            return None
        trace_id = header.split("/", 1)[0]
        return f"projects/{self.settings.gcp_project}/traces/{trace_id}" if trace_id else None

    @staticmethod
    def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
        payload = json.dumps(to_jsonable_python(body), ensure_ascii=False)
        response = flask.Response(payload, status=status, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    def _access_log(self, request: flask.Request, response: flask.Response, request_id: str, started: float) -> None:
        latency = time.perf_counter() - started
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        log.log(
            level,
            f"{request.method} {request.path} {response.status_code}",
            extra={
                "function": self.name,
                "request_id": request_id,
                "httpRequest": {
                    "requestMethod": request.method,
                    "requestUrl": request.path,
                    "status": response.status_code,
                    "userAgent": request.headers.get("User-Agent", ""),
                    "latency": f"{latency:.6f}s",
                },
            },
        )
