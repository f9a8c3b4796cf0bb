"""The HTTP conventions of every function, applied in one place.

A function's `main.py` builds a `Router`, declares its routes with their auth
requirement and pydantic models, and hands each Flask request to
`router.handle`. Everything a client can rely on happens here: request id,
CORS, body size limit, routing (404/405), authentication and roles, JSON
parsing (400/415), validation (422), the error shape, and one access log line
per request. Handlers only see validated input and a verified principal.

Hardening (docs/security.md): in the cloud an unsafe configuration refuses to
serve (503 `misconfigured`); bodies are validated strictly and no field may hold
a NUL, an unpaired surrogate or an integer beyond a bigint; JSON deeper than
MAX_JSON_DEPTH is a 400; no error repeats the client's input; a database that
cannot be reached is a 503 with Retry-After; errors Flask raises before the
handler (functions-framework's /favicon.ico) get the same JSON shape.

Responses: a route declares the model of its success body (`response=`); handlers
still return dicts, and the router checks each 2xx dict against the model after adding
the request id (`_check_response`). Outside the cloud (tests, the local server) a body
that does not match is a 500 `response_invalid`, so drift fails the test that made it;
in the cloud it is a warning in the log (the route, the fields at fault, never their
values) and the body is sent as it is: a client that tolerates one more field should
not lose its answer over it. Streams and replayed idempotent answers are not checked.
With `openapi=True` the router also answers `GET /openapi.json` (no auth) with the
function's own OpenAPI document (shared/http/openapi.py: `router_document`).

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
import sqlalchemy.exc as sa_exc
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, RequestRedirect, Rule

from shared.api.models import OpenApiDocument
from shared.config import Settings, get_settings
from shared.errors import DomainError
from shared.http.auth import Principal, verify_bearer
from shared.http.errors import ApiError, bad_request, for_status, from_domain
from shared.logs import request_id_var, trace_var

log = logging.getLogger("shared.http")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-Id, Accept, Idempotency-Key"
_SLASHES = re.compile(r"/{2,}")

# Request bodies are flat objects; anything nested deeper than this is not ours.
MAX_JSON_DEPTH = 32
# What a Postgres bigint holds: an integer outside it cannot name anything we store.
_INT64 = (-(2**63), 2**63 - 1)
# SQLSTATEs meaning "the database cannot take this request now", not "the request is wrong":
# class 08 (connection exception), too many connections, admin/crash shutdown, starting up.
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")
DB_RETRY_AFTER_S = 5

_refusals_logged: set[tuple[str, ...]] = set()

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
    response: type[BaseModel] | None = None


class Router:
    """Routes of one function, and the conventions around them."""

    def __init__(self, name: str, settings: Settings | None = None, *, openapi: bool = False) -> None:
        self.name = name
        self._settings = settings
        self._rules = Map(strict_slashes=False, merge_slashes=False)
        self._routes: dict[str, Route] = {}
        self._own_document: str | None = None
        if openapi:
            self.get("/openapi.json", auth=False, response=OpenApiDocument)(self.openapi_document)
        if flask.has_app_context():  # functions-framework is loading the function module
            self.install(flask.current_app)
            self._unsafe_configuration()  # say so at cold start, not only at the first request

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
        response: type[BaseModel] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route. `body`/`query`: the request models (validated before the
        handler runs); `response`: the model of the success body (checked after it, and
        published in the OpenAPI document)."""

        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{len(self._routes)}"
            self._rules.add(Rule(path, endpoint=endpoint, methods=[m.upper() for m in methods]))
            self._routes[endpoint] = Route(handler, auth or admin, admin, body, query, response)
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["GET"], path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["POST"], path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["PUT"], path, **kw)

    # -- serving -----------------------------------------------------------------
    def handle(self, request: flask.Request, *, error: ApiError | None = None) -> flask.Response:
        """Entry point: every function's handler is `return router.handle(request)`.

        With `error`, answer that error with the same conventions (request id, CORS,
        access log): how errors raised outside the router (by Flask or werkzeug) are
        turned into the usual shape."""
        started = time.perf_counter()
        request_id = self._request_id(request)
        rid_token = request_id_var.set(request_id)
        trace_token = trace_var.set(self._trace(request))
        origin = request.headers.get("Origin")
        cors_ok = False
        try:
            cors_ok = self._origin_allowed(origin)
            self._refuse_unsafe_configuration()
            if error is not None:
                raise error
            response = self._dispatch(request, request_id, origin, cors_ok)
        except ApiError as exc:
            response = self._json(exc.body(request_id), exc.status, exc.headers)
        except DomainError as exc:
            err = from_domain(exc)
            response = self._json(err.body(request_id), err.status, err.headers)
        except Exception as exc:
            if _database_unreachable(exc):
                # Expected during an outage: one line with the cause, no stack trace.
                log.error(
                    "database unreachable",
                    extra={"path": request.path, "request_id": request_id, "cause": _cause(exc)},
                )
                err = ApiError(
                    503,
                    "database_unavailable",
                    "The database cannot be reached right now; retry shortly.",
                    headers={"Retry-After": str(DB_RETRY_AFTER_S)},
                )
            else:
                log.exception("unhandled error", extra={"path": request.path, "request_id": request_id})
                err = ApiError(500, "internal", "Internal error; the request id identifies it in the logs.")
            response = self._json(err.body(request_id), err.status, err.headers)
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

    def install(self, app: flask.Flask) -> None:
        """Answer the errors Flask and werkzeug raise before our handler runs (the
        404 functions-framework gives /favicon.ico and /robots.txt, a method its
        rules do not take) in the usual JSON shape instead of HTML. Called for the
        app functions-framework is building when the function module creates its
        router (the module is executed inside that app's context, in the cloud as
        locally). A 500 keeps functions-framework's own crash handler."""
        app.register_error_handler(HTTPException, self._flask_http_error)

    def _flask_http_error(self, exc: HTTPException) -> flask.Response:
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return self.handle(flask.request, error=for_status(exc.code or 500, headers))

    def _refuse_unsafe_configuration(self) -> None:
        """Fail closed: in the cloud, a configuration that switches on a local-only
        convenience (unsigned tokens, open CORS, default database credentials, the
        debugger) refuses every request; the log says why, once per process."""
        if self._unsafe_configuration():
            raise ApiError(
                503, "misconfigured", "This service is not configured safely and refuses to serve; see its logs."
            )

    def _unsafe_configuration(self) -> list[str]:
        problems = self.settings.cloud_refusals()
        key = tuple(problems)
        if problems and key not in _refusals_logged:
            _refusals_logged.add(key)
            log.critical(
                "refusing to serve: local-only settings in the cloud: " + "; ".join(problems),
                extra={"function": self.name, "problems": problems},
            )
        return problems

    def _dispatch(self, request: flask.Request, request_id: str, origin: str | None, cors_ok: bool) -> flask.Response:
        path = self._local_path(request.path)
        adapter = self._rules.bind("localhost")

        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return self._preflight(adapter, path, origin, cors_ok)

        try:
            endpoint, path_params = adapter.match(path, method=request.method)
        except (NotFound, RequestRedirect):
            # The path is the client's: it is not repeated back (nor logged beyond the access line).
            raise ApiError(404, "not_found", "No such route.") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise ApiError(
                405,
                "method_not_allowed",
                f"This method is not allowed here; allowed: {allowed}.",
                headers={"Allow": allowed},
            ) from None
        route = self._routes[endpoint]

        self._check_size(request)
        principal = None
        if route.auth:
            principal = verify_bearer(request.headers.get("Authorization"), self.settings)
            if route.admin:
                principal.require_admin()

        ctx = Request(request, request_id, principal, dict(path_params))
        if route.query is not None:
            # Query strings are text: the model parses "50" into 50 (lax mode).
            ctx.query = self._validate(route.query, request.args.to_dict(), "query")
        if route.body is not None:
            # JSON has types: strict mode refuses true for 1, 1 for "1", "2" for 2.
            ctx.body = self._validate(route.body, self._json_body(request), "body", strict=True)

        result = route.handler(ctx)
        if isinstance(result, flask.Response):
            return result
        status = 200
        if isinstance(result, tuple):
            result, status = result
        if isinstance(result, dict):
            result = {**result, "request_id": request_id}
            if route.response is not None and status < 300:
                self._check_response(route, result)
        return self._json(result, status)

    def _check_response(self, route: Route, body: dict[str, Any]) -> None:
        """The body against the route's response model: a 500 outside the cloud, a
        warning in it (see the module docstring). Lax mode: a handler's UUID or datetime
        objects count as the strings they become in JSON."""
        assert route.response is not None
        try:
            route.response.model_validate(body)
        except ValidationError as exc:
            errors = [
                f"{'.'.join(map(str, err['loc']))}: {err['type']}"
                for err in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
            in_cloud = self.settings.in_cloud
            log.log(
                logging.WARNING if in_cloud else logging.ERROR,
                f"response does not match its model {route.response.__name__}: " + "; ".join(errors[:5]),
                extra={
                    "function": self.name,
                    "handler": route.handler.__name__,
                    "model": route.response.__name__,
                    "errors": errors[:20],
                },
            )
            if not in_cloud:
                raise ApiError(
                    500, "response_invalid", "The answer does not match its documented shape; see the logs."
                ) from None

    def openapi_document(self, req: Request) -> flask.Response:
        """This function's own OpenAPI document.

        Paths are relative to the function (`/grade`, as it sees them deployed alone);
        behind Firebase Hosting or the local server they sit under `/api/<function>`, as
        in the combined document (docs/openapi.json)."""
        if self._own_document is None:
            from shared.http.openapi import render, router_document  # openapi imports this module

            self._own_document = render(router_document(self))
        return flask.Response(self._own_document, mimetype="application/json", headers={"Cache-Control": "no-cache"})

    # -- pieces --------------------------------------------------------------------
    def _local_path(self, path: str) -> str:
        # `//` is one `/` (werkzeug would answer it with a redirect, not a route).
        path = _SLASHES.sub("/", path)
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
    def _json_body(request: flask.Request) -> str:
        """The body as JSON text, checked to be well-formed and shallow; the model
        validates it from the text (so strict mode still reads a UUID from a string)."""
        mimetype = request.mimetype or ""
        if not (mimetype == "application/json" or mimetype.endswith("+json")):
            raise ApiError(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
        raw = request.get_data(cache=True)
        if not raw.strip():
            raise bad_request("The request body is empty; a JSON object is required.", "invalid_json")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("The request body is not valid UTF-8.", "invalid_json") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"The request body is not valid JSON: {exc.msg} at character {exc.pos}."
            raise bad_request(message, "invalid_json") from None
        except RecursionError:
            raise _too_deep() from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise _too_deep()
        return text

    @staticmethod
    def _validate(model: type[BaseModel], data: Any, where: str, *, strict: bool = False) -> BaseModel:
        try:
            if isinstance(data, str):
                value = model.model_validate_json(data, strict=strict)
            else:
                value = model.model_validate(data, strict=strict)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            if any(err["type"] == "json_invalid" for err in errors):
                raise bad_request("The request body is not valid JSON.", "invalid_json") from None
            raise _validation_error(where, [_detail(model, where, err) for err in errors]) from None
        bad = _bad_values(value, [where])
        if bad:
            raise _validation_error(where, bad)
        return value

    def _preflight(self, adapter: Any, path: str, origin: str | None, cors_ok: bool) -> flask.Response:
        if not cors_ok:
            raise ApiError(403, "cors_origin_not_allowed", "This origin is not allowed.")
        try:
            methods = adapter.allowed_methods(path)
        except NotFound:
            methods = []
        if not methods:
            raise ApiError(404, "not_found", "No such route.")
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


# -- request parsing helpers -------------------------------------------------------------
def _too_deep() -> ApiError:
    return bad_request(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.", "invalid_json")


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                break
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _validation_error(where: str, details: list[dict[str, Any]]) -> ApiError:
    first = details[0]
    where_txt = ".".join(str(p) for p in first["loc"])
    return ApiError(422, "validation_error", f"Invalid {where}: {where_txt}: {first['msg']}", details=details)


def _detail(model: type[BaseModel], where: str, err: Any) -> dict[str, Any]:
    """One validation error, without the client's input: no value, no unknown field
    name, no fragment of an unparsable value."""
    loc = list(err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        loc = loc[:-1]  # the object holding the unknown field, not its (client-chosen) name
        if not loc:
            allowed = ", ".join(f.alias or name for name, f in model.model_fields.items())
            msg = f"Unknown field; the fields are: {allowed}"
        else:
            msg = "Unknown field"
    elif err["type"].endswith("_parsing"):
        msg = msg.split(",", 1)[0]  # "Input should be a valid UUID, invalid character: found `x`..."
    return {"loc": [where, *loc], "msg": msg, "type": err["type"]}


def _bad_values(value: Any, loc: list[Any]) -> list[dict[str, Any]]:
    """What no field may hold, whatever its model says: NUL characters and unpaired
    surrogates (PostgreSQL text cannot store them, UTF-8 cannot encode them) and
    integers beyond a bigint. Walks validated data, so every location is a field name
    of the model (never a client-chosen key) or a list index."""
    bad: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[Any]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                bad.append({"loc": where, "msg": "must not contain NUL (U+0000) characters", "type": "string_nul"})
            elif not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    bad.append({"loc": where, "msg": "must be valid Unicode text", "type": "string_unicode"})
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not _INT64[0] <= item <= _INT64[1]:
                bad.append({"loc": where, "msg": "integer out of range", "type": "int_out_of_range"})
        elif isinstance(item, BaseModel):
            for name, info in type(item).model_fields.items():
                stack.append((getattr(item, name), [*where, info.alias or name]))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((child, [*where, i]) for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, where))
                stack.append((child, where))
    return sorted(bad, key=lambda d: [str(p) for p in d["loc"]])


# -- database availability ---------------------------------------------------------------
def _sqlstate(exc: BaseException | None) -> str | None:
    args = getattr(exc, "args", None)
    if args and isinstance(args[0], dict):  # pg8000 server errors carry the fields by code letter
        code = args[0].get("C")
        return code if isinstance(code, str) else None
    return None


def _database_unreachable(exc: BaseException) -> bool:
    """A failure to reach the database (down, unreachable, refusing connections, out
    of connections), as opposed to a bug: walks the exception chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return True
            if isinstance(current, sa_exc.InterfaceError | sa_exc.OperationalError) and current.statement is None:
                return True  # failed while connecting, before any statement
            code = _sqlstate(current.orig)
            if code and code.startswith(_UNAVAILABLE_SQLSTATES):
                return True
        if type(current).__module__.startswith("google.cloud.sql.connector"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
