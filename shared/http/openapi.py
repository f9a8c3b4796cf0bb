"""The OpenAPI 3.1 document of the HTTP functions, generated from their routers.

Nothing is written by hand per route: paths, methods, auth and roles come from each
`Router`'s route table, request bodies and query parameters from the pydantic models
the routes declare (`model_json_schema`), summaries from the handlers' docstrings.

Responses: every error has the one shape the router produces (`ErrorBody`), listed per
route with the statuses that route can answer. A success body is the schema of the
route's response model (`response=` on the route, serialization mode: what the JSON
looks like); the router checks every answer against that model, so the schema is what
the tests saw. A route without one is documented as the generic `SuccessBody` (and
tests/drills/test_drill_openapi.py fails until it has one). The two streaming routes
also document `text/event-stream`.

`docs/openapi.json` is this document, checked in; `tests/drills/test_openapi.py`
regenerates it and compares bytes (`python -m shared.http.openapi --write` updates it).
The local server serves it at `/api/openapi.json`; `router_document(router)` gives a
single function's own document (paths relative to the function), which each function
serves at its own `GET /openapi.json` (`Router(name, openapi=True)`).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from shared.http.router import Route, Router

OPENAPI_VERSION = "3.1.0"
API_TITLE = "cognitive-core"
API_VERSION = "1"
REPO_ROOT = Path(__file__).resolve().parents[2]
HTTP_FUNCTIONS = ("chat", "grading", "prediction", "feedback")
CHECKED_IN = REPO_ROOT / "docs" / "openapi.json"

# Routes that answer Server-Sent Events with `Accept: text/event-stream` (shared/http/sse.py).
STREAMING = {("chat", "/"), ("chat", "/content")}
# Statuses a route can answer besides the common ones, when its domain can produce them.
EXTRA_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("chat", "/content"): (502,),
}

_REF = "#/components/schemas/{model}"
_CONVERTER_SCHEMA: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number"},
    "default": {"type": "string"},
    "string": {"type": "string"},
    "path": {"type": "string"},
}
_RULE_PART = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

_STATUS_TEXT = {
    400: "Malformed JSON or a request the domain refuses",
    401: "Missing, malformed, expired or invalid ID token",
    403: "Not the caller's data, or the admin role is needed",
    404: "No such route or resource",
    409: "Conflicts with the resource's state (or the first request with this Idempotency-Key still runs)",
    413: "Request body over MAX_REQUEST_BYTES",
    415: "Body is not JSON",
    422: "Validation error (details name the fields; input is never echoed)",
    429: "Per-user rate limit reached (see Retry-After)",
    500: "Internal error (the request id finds it in the logs)",
    502: "The language model's answer could not be used",
    503: "A dependency (database, LLM, token certificates) is unavailable, or the configuration is refused",
}

ERROR_BODY = {
    "type": "object",
    "title": "ErrorBody",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": ["string", "null"]},
                "details": {
                    "description": "422 validation errors: the fields at fault; a domain error "
                    "may give an object instead (e.g. the valid labels)",
                    "anyOf": [
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["loc", "msg", "type"],
                                "properties": {
                                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                                    "msg": {"type": "string"},
                                    "type": {"type": "string"},
                                },
                            },
                        },
                        {"type": "object"},
                    ],
                },
            },
        }
    },
}
SUCCESS_BODY = {
    "type": "object",
    "title": "SuccessBody",
    "description": "A route without a response model: a JSON object that repeats the request id.",
    "required": ["request_id"],
    "properties": {"request_id": {"type": "string"}},
    "additionalProperties": True,
}


def load_function_routers(names: Iterable[str] = HTTP_FUNCTIONS) -> list[Router]:
    """Each HTTP function's router, imported from its `main.py` under a private module
    name (the functions are folders, not packages)."""
    routers = []
    for name in names:
        module_name = f"_openapi_function_{name}"
        module = sys.modules.get(module_name)
        if module is None:
            path = REPO_ROOT / "functions" / name / "main.py"
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        routers.append(module.router)
    return routers


def route_table(router: Router) -> list[tuple[str, str, Route, dict[str, str]]]:
    """(method, werkzeug rule, route, {path parameter: converter}) of a router, in
    declaration order; HEAD (werkzeug adds it to GET) is left out."""
    rows = []
    for rule in router._rules.iter_rules():
        route = router._routes[rule.endpoint]
        converters = {arg: _converter_name(conv) for arg, conv in rule._converters.items()}
        for method in sorted(m for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS")):
            rows.append((method, rule.rule, route, converters))
    return rows


def _converter_name(converter: Any) -> str:
    return {"UUIDConverter": "uuid", "IntegerConverter": "int", "FloatConverter": "float"}.get(
        type(converter).__name__, "string"
    )


def openapi_path(prefix: str, rule: str) -> str:
    """`/api/chat` + `/sessions/<uuid:session_id>/messages` → `/api/chat/sessions/{session_id}/messages`."""
    path = prefix.rstrip("/") + _RULE_PART.sub(lambda m: "{" + m.group(2) + "}", rule)
    return path.rstrip("/") or "/"


def build_document(
    mounts: Sequence[tuple[str, Router]],
    *,
    extra_paths: dict[str, Any] | None = None,
    servers: list[dict[str, str]] | None = None,
) -> dict:
    """The document for routers mounted at the given prefixes (`("/api/chat", router)`)."""
    components: dict[str, Any] = {"ErrorBody": ERROR_BODY}
    paths: dict[str, Any] = {}
    for prefix, router in mounts:
        for method, rule, route, converters in route_table(router):
            path = openapi_path(prefix, rule)
            op = _operation(router.name, method, rule, route, converters, components)
            paths.setdefault(path, {})[method.lower()] = op
    for path, item in (extra_paths or {}).items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": "The AI back end's HTTP functions, generated from their routers "
            "(shared/http/openapi.py). Auth: a Firebase ID token as a bearer token; admin "
            "routes need the admin claim. Errors: ErrorBody. Success bodies: each route's "
            "response model.",
        },
        "servers": servers or [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "firebase": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Firebase ID token (RS256; the Auth emulator's unsigned "
                    "tokens locally). Admin: custom claim role=admin or admin=true.",
                }
            },
        },
    }


def _operation(
    function: str, method: str, rule: str, route: Route, converters: dict[str, str], components: dict[str, Any]
) -> dict[str, Any]:
    doc = inspect.getdoc(route.handler) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip() or route.handler.__name__.replace("_", " ")
    op: dict[str, Any] = {
        "operationId": f"{function}_{route.handler.__name__}",
        "summary": summary,
        "tags": [function],
    }
    if doc and doc != summary:
        op["description"] = doc
    params: list[dict[str, Any]] = [
        {"name": arg, "in": "path", "required": True, "schema": dict(_CONVERTER_SCHEMA[conv])}
        for arg, conv in converters.items()
    ]
    if route.query is not None:
        params.extend(_query_parameters(route.query, components))
    if getattr(route.handler, "__idempotent__", None):  # shared/http/idempotency.py
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retried request with the same key is answered with the first result "
                "(header Idempotent-Replayed: true) and counts once; the same key with another body is a 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._:\\-]{1,128}$"},
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _model_ref(route.body, components)}},
        }
    if route.auth:
        op["security"] = [{"firebase": []}]
        if route.admin:
            op["x-roles"] = ["admin"]
            op["description"] = (op.get("description", summary) + "\n\nAdmin only.").strip()
    else:
        op["security"] = []
    op["responses"] = _responses(function, rule, route, components)
    return op


def _responses(function: str, rule: str, route: Route, components: dict[str, Any]) -> dict[str, Any]:
    if route.response is not None:
        ok_schema = _model_ref(route.response, components, mode="serialization")
    else:
        components["SuccessBody"] = SUCCESS_BODY
        ok_schema = {"$ref": _REF.format(model="SuccessBody")}
    ok_content: dict[str, Any] = {"application/json": {"schema": ok_schema}}
    if (function, rule) in STREAMING:
        ok_content["text/event-stream"] = {
            "schema": {"type": "string"},
            "description": "with Accept: text/event-stream: metadata, delta..., final (or error) events",
        }
    responses: dict[str, Any] = {"200": {"description": "OK", "content": ok_content}}
    statuses = {400, 404, 409, 500, 503}
    if route.auth:
        statuses |= {401, 403}
    if route.body is not None:
        statuses |= {413, 415, 422}
    if route.query is not None:
        statuses.add(422)
    if getattr(route.handler, "__rate_limit__", None):  # shared/http/limits.py
        statuses.add(429)
    if getattr(route.handler, "__idempotent__", None):
        statuses |= {409, 422}
    statuses |= set(EXTRA_STATUSES.get((function, rule), ()))
    error = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
    for status in sorted(statuses):
        entry: dict[str, Any] = {"description": _STATUS_TEXT[status], "content": error}
        if status in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": status == 429}}
        responses[str(status)] = entry
    return responses


def _model_ref(
    model: type[BaseModel], components: dict[str, Any], *, mode: JsonSchemaMode = "validation"
) -> dict[str, str]:
    """A `$ref` to the model's schema in `components` (added with its sub-models). Two
    different schemas under one name would make one route document another's body: an
    error, so rename one of the models."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        _add_component(components, name, sub)
    _add_component(components, model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def _add_component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    known = components.setdefault(name, schema)
    if known != schema:
        raise ValueError(f"two different schemas are named {name!r}: rename one of the models")


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        _add_component(components, name, sub)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _drop_null(copy.deepcopy(prop))
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append(param)
    return params


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value; `anyOf: [X, null]` becomes X."""
    variants = prop.get("anyOf")
    if isinstance(variants, list):
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in prop.items() if k != "anyOf"}
            merged = {**kept[0], **rest}
            if merged.get("default", 0) is None:
                merged.pop("default")
            return merged
    return prop


def router_document(router: Router) -> dict:
    """One function's own document, paths as the function sees them deployed alone; the
    same operations and schemas as its part of the combined document."""
    servers = [
        {"url": f"/api/{router.name}", "description": "behind Firebase Hosting or the local server"},
        {"url": "/", "description": "the function's own URL"},
    ]
    return build_document([("", router)], servers=servers)


def local_document() -> dict:
    """Every HTTP function as the local server (and Firebase Hosting's rewrites) mount
    them under `/api/<name>`, plus the local server's health route and the instance
    counters (shared/http/counters.py)."""
    from local.server import health_router  # the local server's own health route
    from shared.http import counters

    mounts = [(f"/api/{router.name}", router) for router in load_function_routers()]
    mounts.append(("/api/health", health_router))
    mounts.append(("/api/admin/counters", counters.router))
    return build_document(mounts)


def render(document: dict) -> str:
    """The canonical bytes: sorted keys, two-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(local_document())
    if "--write" in args:
        CHECKED_IN.write_text(text, encoding="utf-8")
        print(f"wrote {CHECKED_IN.relative_to(REPO_ROOT)}")
    elif "--check" in args:
        if not CHECKED_IN.exists() or CHECKED_IN.read_text(encoding="utf-8") != text:
            print(f"{CHECKED_IN.relative_to(REPO_ROOT)} is out of date: python -m shared.http.openapi --write")
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
