"""pg8000's statements in one round trip (shared.db.engine.pipeline_unnamed_statements):
same answers and same errors as the driver's own three round trips, one flush each."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from shared.db.engine import counted_flushes


@pytest.fixture(autouse=True)
def _installed() -> None:
    from shared.db.engine import pipeline_unnamed_statements

    assert pipeline_unnamed_statements()
    assert pipeline_unnamed_statements()  # idempotent: one replacement, not one of another


@contextmanager
def drivers_own() -> Iterator[None]:
    """The driver's own execute_unnamed, for comparison."""
    from pg8000 import core

    pipelined = core.CoreConnection.execute_unnamed
    core.CoreConnection.execute_unnamed = pipelined.driver_version  # type: ignore[attr-defined]
    try:
        yield
    finally:
        core.CoreConnection.execute_unnamed = pipelined


STATEMENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "SELECT CAST(:a AS int) + 1 AS n, CAST(:t AS text) AS t, CAST(:z AS text) AS z",
        {"a": 41, "t": "é'\"", "z": None},
    ),
    ("SELECT g, g * 0.5 AS half FROM generate_series(1, CAST(:n AS int)) AS g", {"n": 50}),
    ("SELECT CAST(:arr AS text[]) AS arr, CAST(:v AS vector) AS v", {"arr": ["a", "b,c"], "v": np.arange(3.0)}),
    ("SELECT 1 WHERE CAST(:f AS boolean)", {"f": False}),
]


def _rows(conn: sa.Connection, statement: str, params: dict[str, Any]) -> list[tuple]:
    return [
        tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in row)
        for row in conn.execute(sa.text(statement), params)
    ]


def test_a_statement_is_one_round_trip_and_answers_as_the_driver_does(engine: Any) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # the transaction's begin is behind us
        for statement, params in STATEMENTS:
            with counted_flushes() as flushes:
                ours = _rows(conn, statement, params)
            assert flushes[0] == 1, statement
            with drivers_own(), counted_flushes() as flushes:
                theirs = _rows(conn, statement, params)
            assert flushes[0] == 3, statement  # what this replaces: Parse, Describe, Bind + Execute
            assert ours == theirs, statement


def test_writes_report_their_row_counts(engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMPORARY TABLE pipelined (id int PRIMARY KEY, v text)"))
        inserted = conn.execute(sa.text("INSERT INTO pipelined SELECT g, 'x' FROM generate_series(1, 5) AS g"))
        updated = conn.execute(sa.text("UPDATE pipelined SET v = :v WHERE id > :k"), {"v": "y", "k": 2})
        assert (inserted.rowcount, updated.rowcount) == (5, 3)
        assert conn.execute(sa.text("SELECT count(*) FROM pipelined WHERE v = 'y'")).scalar() == 3


@pytest.mark.parametrize(
    "statement, params",
    [
        ("SELEC 1", {}),  # fails at Parse
        ("SELECT CAST(:a AS int)", {"a": "not a number"}),  # fails at Bind
        ("SELECT 1 / CAST(:a AS int)", {"a": 0}),  # fails at Execute
    ],
)
def test_an_error_at_any_step_is_raised_and_the_connection_goes_on(
    engine: Any, statement: str, params: dict[str, Any]
) -> None:
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text(statement), params)
        conn.rollback()
        assert conn.execute(sa.text("SELECT CAST(:a AS int) * 2"), {"a": 21}).scalar() == 42


@pytest.mark.parametrize(
    "value",
    [
        {"not json": object()},  # the driver's converter fails
        "lone surrogate \ud800",  # converted, then fails to encode for the wire
    ],
)
def test_a_value_the_driver_cannot_send_leaves_the_connection_clean(engine: Any, value: Any) -> None:
    """The parameters are encoded before a byte is written: nothing half-sent is left in
    the socket's buffer to corrupt the next statement."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # inside the transaction block, where statements are pipelined
        with pytest.raises((TypeError, ValueError, sa.exc.StatementError)):
            conn.execute(sa.text("SELECT CAST(:a AS text)"), {"a": value})
        with counted_flushes() as flushes:
            assert conn.execute(sa.text("SELECT CAST(:a AS text)"), {"a": "still fine"}).scalar() == "still fine"
        assert flushes[0] == 1


def test_statements_outside_a_transaction_block_still_run(engine: Any) -> None:
    """CREATE DATABASE and VACUUM refuse a transaction block, and Postgres takes the
    messages up to a Sync outside one as an implicit block: there the driver's own way is
    kept (for statements with parameters; pg8000 sends the others as simple queries)."""
    name = f"pipelined_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                conn.execute(sa.text("VACUUM (ANALYZE) topics"))
                with counted_flushes() as flushes:
                    assert conn.execute(sa.text("SELECT CAST(:n AS text)"), {"n": name}).scalar() == name
                assert flushes[0] == 3  # outside a transaction block: the driver's own three
            finally:
                conn.execute(sa.text(f'DROP DATABASE "{name}"'))
    finally:
        admin.dispose()


def test_copy_from_a_stream_still_runs(engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMPORARY TABLE copied (id int, v text)"))
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("COPY copied FROM STDIN WITH (FORMAT csv)", stream=io.BytesIO(b"1,a\n2,b\n"))
        assert conn.execute(sa.text("SELECT array_agg(v ORDER BY id) FROM copied")).scalar() == ["a", "b"]
