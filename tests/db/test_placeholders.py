"""pg8000's placeholder rewriting, memoised per statement text (shared.db.engine)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import sqlalchemy as sa

STATEMENTS = [
    "SELECT %s",
    "SELECT %s, %s WHERE x = %s",
    "SELECT '%%s is not a parameter', %s",
    "SELECT 'it''s %s', \"col%s\", %s -- a comment with %s\n, %s",
    "SELECT $$ %s $$, E'\\' %s', %s",
    "SELECT 100 %% 7, %s::int",
]


def _original() -> Any:
    """pg8000's own rewrite, from a fresh copy of its module (the loaded one is patched)."""
    from pg8000 import dbapi

    spec = importlib.util.spec_from_file_location("pg8000_dbapi_unpatched", dbapi.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convert_paramstyle


def test_memoised_rewrite_equals_the_drivers_own() -> None:
    from pg8000 import dbapi, legacy

    from shared.db.engine import memoise_placeholders

    memoise_placeholders()
    memoise_placeholders()  # idempotent: one wrapper, not a wrapper of a wrapper
    original = _original()
    assert legacy.convert_paramstyle is dbapi.convert_paramstyle
    assert getattr(dbapi.convert_paramstyle, "memoised", False)
    for statement in STATEMENTS:
        args = tuple(range(statement.count("%s")))
        for _ in range(2):  # the first call fills the cache, the second reads it
            assert dbapi.convert_paramstyle("format", statement, args) == original("format", statement, args)
    # Other styles are the driver's, unchanged (their values depend on the arguments).
    assert dbapi.convert_paramstyle("named", "SELECT :a, :b, :a", {"a": 1, "b": 2}) == ("SELECT $1, $2, $1", (1, 2))


def test_a_bad_placeholder_is_still_refused() -> None:
    from pg8000 import dbapi
    from pg8000.exceptions import InterfaceError

    from shared.db.engine import memoise_placeholders

    memoise_placeholders()
    with pytest.raises(InterfaceError):
        dbapi.convert_paramstyle("format", "SELECT %d", (1,))


def test_the_engines_statements_go_through_the_cache(engine: Any) -> None:
    from pg8000 import legacy

    info = legacy.convert_paramstyle.cache_info
    statement = sa.text("SELECT CAST(:a AS int) + CAST(:b AS int) AS total /* test_placeholders */")
    before = info()
    with engine.connect() as conn:
        assert [conn.execute(statement, {"a": i, "b": 1}).scalar() for i in range(3)] == [1, 2, 3]
    after = info()
    assert after.hits >= before.hits + 2  # the first execute may fill it; the others read it
