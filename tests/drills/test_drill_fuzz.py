"""Fuzzing every route of the running local stack with schemathesis, from the served
OpenAPI document, as a student and as an admin, with valid and invalid data.

Goal: 0 responses with a 5xx status, 0 responses outside the documented statuses,
content types and schemas, 0 stack traces, and no error that repeats a generated
string back. The example budget is fixed (FUZZ_EXAMPLES per operation, mode and role,
derandomized so CI is reproducible); a longer run is documented in docs/drills.md:

    FUZZ_EXAMPLES=200 .venv/bin/python -m pytest tests/drills/test_drill_fuzz.py -s
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "psycopg", "pg8000.")


def field_names(document: dict) -> set[str]:
    """Every property and parameter name the document declares: an error may name a field."""
    names: set[str] = set()
    stack: list[Any] = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            names.update(item.get("properties", {}) if isinstance(item.get("properties"), dict) else ())
            if item.get("in") in ("query", "path") and isinstance(item.get("name"), str):
                names.add(item["name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def generated_strings(value: Any, known: set[str]) -> list[str]:
    """Strings the fuzzer made up (values, and keys that are not field names) that are
    long enough to recognise if echoed."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and len(item.strip()) >= 8 and item not in known:
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def test_fuzz_every_route_as_student_and_admin(local_stack):
    base = local_stack["base"]
    document = requests.get(f"{base}/api/openapi.json", timeout=10).json()
    schema = openapi.from_dict(document)
    known = field_names(document)
    roles = {
        "student": {"Authorization": f"Bearer {local_stack['token']('fuzz-student')}"},
        "admin": {"Authorization": f"Bearer {local_stack['token']('fuzz-admin', admin=True)}"},
    }
    session = requests.Session()
    statuses: collections.Counter[int] = collections.Counter()
    per_operation: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    no_negative: set[str] = set()
    started = time.monotonic()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values()) >= 17

    def run(operation, role: str, headers: dict[str, str], mode: GenerationMode) -> None:
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            response = case.call(base_url=base, session=session, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            per_operation[operation.label] += 1
            label = f"{operation.label} [{role}, {mode.value}] -> {response.status_code}"
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as exc:  # noqa: BLE001 - every failed check is collected, not just the first
                failures.append(f"{label}: {str(exc)[:400]}")
            text = response.text
            if any(marker in text for marker in TRACE_MARKERS):
                failures.append(f"{label}: stack trace or driver detail in the body")
            if response.status_code >= 400:
                sent = generated_strings([case.body, case.query, case.path_parameters], known)
                echoed = [s for s in sent if s in text]
                if echoed:
                    failures.append(f"{label}: error echoes the input {echoed[0][:40]!r}")
            if "json" in response.headers.get("Content-Type", ""):
                body = response.json()
                rid = body.get("request_id") or (body.get("error") or {}).get("request_id")
                if rid != response.headers.get("X-Request-Id"):
                    failures.append(f"{label}: body and header request ids differ")

        try:
            fuzz()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid input to generate.
            if mode is not GenerationMode.NEGATIVE:
                raise
            no_negative.add(operation.label)

    for operation in operations:
        for role, headers in roles.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run(operation, role, headers, mode)

    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    summary = {
        "requests": total,
        "seconds": round(elapsed, 1),
        "examples_per_operation_mode_role": FUZZ_EXAMPLES,
        "operations": len(operations),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "failures": len(failures),
        "operations_without_invalid_input": len(no_negative),
    }
    print("fuzz summary:", json.dumps(summary))
    assert failures == [], "\n".join(failures[:30])
    assert summary["server_errors"] == 0
    assert all(per_operation[op.label] > 0 for op in operations)
    assert total >= len(operations) * 2 * 2
