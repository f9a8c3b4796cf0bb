"""The OpenAPI document: generated from the routers, checked in, served, complete."""

from __future__ import annotations

import json

import jsonschema_rs

from shared.http.openapi import CHECKED_IN, load_function_routers, local_document, render, route_table, router_document


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
    expected = 1  # GET /api/health
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
            if path == "/api/health":
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
                assert ref.endswith("SuccessBody" if status == "200" else "ErrorBody"), where
    assert doc["paths"]["/api/feedback/review-queue"]["get"]["x-roles"] == ["admin"]
    assert "text/event-stream" in doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    grade = schemas["GradeRequest"]["properties"]
    assert grade["attempt_id"]["anyOf"][0]["format"] == "uuid"
