"""The OpenAPI document: generated from the routers, checked in, served, complete."""

from __future__ import annotations

import json

import jsonschema_rs

from shared.http.openapi import CHECKED_IN, load_function_routers, local_document, render, route_table, router_document

PUBLIC = {"/api/health", *(f"/api/{fn}/openapi.json" for fn in ("chat", "grading", "prediction", "feedback"))}


def test_checked_in_document_matches_the_code():
    """Regenerating gives the same bytes: a route or model change without
    `python -m shared.http.openapi --write` fails here."""
    assert CHECKED_IN.read_text(encoding="utf-8") == render(local_document())


def test_local_server_serves_the_document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_data(as_text=True) == CHECKED_IN.read_text(encoding="utf-8")


def test_every_route_of_every_function_is_documented():
    doc = local_document()
    operations = {(method, path) for path, item in doc["paths"].items() for method in item}
    operation_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    expected = 2  # GET /api/health, GET /api/admin/counters
    for router in load_function_routers():
        rows = route_table(router)
        expected += len(rows)
        own = router_document(router)  # the function's own document, paths relative to it
        assert sum(len(item) for item in own["paths"].values()) == len(rows)
        for _method, _rule, route, _ in rows:
            assert f"{router.name}_{route.handler.__name__}" in operation_ids
    assert len(operations) == expected >= 17


def test_document_is_openapi_3_1_with_auth_and_errors():
    doc = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for name, schema in schemas.items():  # each is a valid JSON Schema 2020-12
        assert jsonschema_rs.meta.is_valid(schema), name
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method} {path}"
            if path in PUBLIC:
                assert op["security"] == [], where
                continue
            assert op["security"] == [{"firebase": []}], where
            assert {"401", "403", "500", "503"} <= set(op["responses"]), where
            if "requestBody" in op:
                assert {"413", "415", "422"} <= set(op["responses"]), where
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert schemas[ref.rsplit("/", 1)[1]]["additionalProperties"] is False, where
            for status, response in op["responses"].items():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                if status == "200":
                    assert ref.rsplit("/", 1)[1] in schemas, where
                else:
                    assert ref.endswith("ErrorBody"), where
    assert doc["paths"]["/api/feedback/review-queue"]["get"]["x-roles"] == ["admin"]
    assert "text/event-stream" in doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    grade = schemas["GradeRequest"]["properties"]
    assert grade["attempt_id"]["anyOf"][0]["format"] == "uuid"


def test_every_route_documents_its_success_body_with_a_model():
    """No route falls back to the generic SuccessBody: a new route needs `response=`."""
    doc = local_document()
    assert "SuccessBody" not in doc["components"]["schemas"]
    for router in [*load_function_routers()]:
        for method, rule, route, _ in route_table(router):
            assert route.response is not None, f"{router.name}: {method} {rule} has no response model"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            schema = doc["components"]["schemas"][ok]
            if path.endswith("/openapi.json"):
                continue  # an OpenAPI document: open by nature
            # A body model forbids unknown keys, names request_id (or is a union of such).
            variants = [doc["components"]["schemas"][v["$ref"].rsplit("/", 1)[1]] for v in schema.get("anyOf", [])]
            for body in variants or [schema]:
                assert body["additionalProperties"] is False, f"{method} {path}"
                assert "request_id" in body["required"], f"{method} {path}"


def test_each_function_serves_its_own_part_of_the_document(client):
    """GET /api/<fn>/openapi.json: the function's own document, public, whose operations
    and schemas are exactly its part of the combined one (paths relative to the function)."""
    combined = local_document()
    for router in load_function_routers():
        response = client.get(f"/api/{router.name}/openapi.json")
        assert response.status_code == 200, router.name
        assert response.mimetype == "application/json"
        own = json.loads(response.get_data(as_text=True))
        assert own == router_document(router)
        assert own["servers"][0]["url"] == f"/api/{router.name}"
        prefix = f"/api/{router.name}"
        mine = {p: item for p, item in combined["paths"].items() if p == prefix or p.startswith(prefix + "/")}
        assert {(prefix + p).rstrip("/") or "/": item for p, item in own["paths"].items()} == mine, router.name
        for name, schema in own["components"]["schemas"].items():
            assert combined["components"]["schemas"][name] == schema, name
        for name, schema in own["components"]["schemas"].items():
            assert jsonschema_rs.meta.is_valid(schema), name
