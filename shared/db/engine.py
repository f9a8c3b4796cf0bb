"""One SQLAlchemy Core engine per process, over pg8000, from one of three sources.

Resolution order:
1. `CLOUD_SQL_INSTANCE` set: Cloud SQL through cloud-sql-python-connector
   (pg8000 is the driver it supports), password or IAM database auth.
2. `DATABASE_URL` set: any reachable Postgres with pgvector.
3. Otherwise the embedded server in `<state_dir>/pgdata` (the local default).

Every connection gets pgvector's adapters, so numpy arrays go in as `vector`
and come back as float32 arrays, in raw SQL as well as through SQLAlchemy, and
retrieval's HNSW settings, so a chat turn does not spend a statement on them. pg8000's
placeholder rewriting is memoised per statement text (`memoise_placeholders`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.config import Settings, get_settings

log = logging.getLogger(__name__)

_engine: Engine | None = None
_engine_lock = threading.Lock()
_connector: Any = None


def normalize_url(url: str) -> str:
    """Accept libpq-style URLs and point them at the pg8000 driver.

    `postgres://` and `postgresql://` become `postgresql+pg8000://`, and a
    libpq `host=/socket/dir` query parameter becomes pg8000's `unix_sock`.
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+pg8000"
    if scheme != "postgresql+pg8000":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got scheme {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    host = query.pop("host", None)
    if host and host.startswith("/"):
        port = parts.port or 5432
        query["unix_sock"] = f"{host.rstrip('/')}/.s.PGSQL.{port}"
    netloc = parts.netloc
    return urlunsplit((scheme, netloc, parts.path, urlencode(query), parts.fragment))


def _register_pgvector(dbapi_conn: Any, _record: Any) -> None:
    """pgvector adapters on the pg8000 DB-API connection (pgvector ships them for
    pg8000's native API only). Parameters go out as vector text whatever the
    database; results come back as float32 arrays once the extension exists."""
    from pgvector import Vector

    dbapi_conn.register_out_adapter(np.ndarray, lambda v: Vector(v).to_text())
    dbapi_conn.register_out_adapter(Vector, lambda v: v.to_text())
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT oid FROM pg_type WHERE oid = to_regtype('vector')")
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None or row[0] is None:
        return  # extension not created yet: migrate.upgrade() recycles the pool after it
    dbapi_conn.register_in_adapter(row[0], lambda text: np.asarray(Vector.from_text(text).to_list(), dtype=np.float32))


def _apply_search_settings(dbapi_conn: Any, record: Any) -> None:
    """Retrieval's HNSW settings for the life of the connection (committed, so no rollback
    undoes them), recorded in the pool record's info where `retrieval` looks before it
    spends a statement per turn on them. Before pgvector is loaded in the session the
    names are placeholders, which Postgres applies when the extension loads."""
    from shared.rag.retrieval import SESSION_SETTINGS, SESSION_SETTINGS_KEY

    cursor = dbapi_conn.cursor()
    try:
        for name, value in SESSION_SETTINGS.items():
            cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
        dbapi_conn.commit()
    except Exception:
        # e.g. a pgvector older than 0.8 refusing `hnsw.iterative_scan`: the connection
        # stays usable, and retrieval sets what it needs per transaction (and degrades
        # to full text if the server refuses it there too).
        dbapi_conn.rollback()
        log.warning("could not apply the search settings to a new connection", exc_info=True)
        return
    finally:
        cursor.close()
    record.info[SESSION_SETTINGS_KEY] = dict(SESSION_SETTINGS)


_PLACEHOLDER_CACHE = 512  # distinct statement texts kept (the product has ~200)


def memoise_placeholders() -> None:
    """Rewrite each statement's placeholders once per process, not on every execute.

    pg8000 turns SQLAlchemy's `%s` placeholders into `$1, $2, ...` by scanning the whole
    statement text character by character in Python on every execute: 0.66 ms for the
    3 KB retrieval statement alone, ~1-1.5 ms over a chat turn's statements
    (docs/chat.md). For the positional "format" style SQLAlchemy's pg8000 dialect uses,
    the rewritten text depends on the statement text alone and the values pass through
    unchanged, so the result is cached per text (bounded, thread-safe);
    other styles go to pg8000 as before. Idempotent: installed once per process.
    """
    from pg8000 import dbapi, legacy

    convert = dbapi.convert_paramstyle
    if getattr(convert, "memoised", False):
        return

    @functools.lru_cache(maxsize=_PLACEHOLDER_CACHE)
    def rewritten(query: str) -> str:
        text, _ = convert("format", query, ())
        return str(text)

    def memoised(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style != "format":
            return convert(style, query, args)
        return rewritten(query), args

    memoised.memoised = True  # type: ignore[attr-defined]
    memoised.cache_info = rewritten.cache_info  # type: ignore[attr-defined]
    # SQLAlchemy's dialect drives pg8000's legacy interface, which imported the name.
    dbapi.convert_paramstyle = legacy.convert_paramstyle = memoised


#: pg8000 releases whose `CoreConnection.execute_unnamed` the pipelined version replaces
#: (same messages, same handlers; requirements.txt pins the driver)
PIPELINED_PG8000 = ("1.31.",)


def pipeline_unnamed_statements() -> bool:
    """Send each statement to Postgres in one round trip instead of three.

    pg8000 runs every statement with parameters (and `commit`) through the extended
    protocol in three round trips: Parse + Sync, then Describe +
    Sync, then Bind + Execute + Sync, waiting for the server after each. Nothing of what
    it sends later depends on those answers (the parameters are encoded from their
    Python types, the row description arrives before the rows either way), so here the
    five messages go out together with one Sync, as libpq's PQexecParams sends them; the
    server answers them in order and the same handlers read the answers. A failing
    Parse or Bind still fails the call: the server skips to the Sync and reports the
    error. Parameters are encoded before anything is written, so a value pg8000 cannot
    send leaves the connection clean. Only inside a transaction block: outside one,
    Postgres runs the messages up to the Sync as one implicit block, which CREATE
    DATABASE and VACUUM refuse, so there the driver's own way is kept (statements
    without parameters, `begin` among them, go as simple queries either way). A chat
    turn's database work after the models waits for 7 round trips instead of 17; that
    pays a little on loopback and more through the Cloud SQL connector, which drives
    pg8000 too (docs/database.md). Installed once per process, only on the pg8000 releases it was
    written against (`PIPELINED_PG8000`); returns whether it is installed.
    """
    import pg8000
    from pg8000 import core

    if getattr(core.CoreConnection.execute_unnamed, "pipelined", False):
        return True
    if not str(pg8000.__version__).startswith(PIPELINED_PG8000):
        log.warning("pg8000 %s: statements keep the driver's three round trips", pg8000.__version__)
        return False

    driver = core.CoreConnection.execute_unnamed

    def execute_unnamed(self: Any, statement: str, vals: Any = (), oids: Any = (), stream: Any = None) -> Any:
        if self._transaction_status != core.IN_TRANSACTION:
            # Outside a transaction block Postgres takes Parse..Sync as one implicit block,
            # which CREATE DATABASE or VACUUM refuse: the driver's own way (and `begin`).
            return driver(self, statement, vals, oids, stream)
        context = core.Context(statement, stream=stream)
        params = core.make_params(self.py_types, vals)
        for value in params:  # what send_BIND encodes, checked before a byte is written
            if value is not None:
                value.encode(self._client_encoding)
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_DESCRIBE_STATEMENT(core.NULL_BYTE)
        self.send_BIND(core.NULL_BYTE, params)
        self.send_EXECUTE()
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    execute_unnamed.pipelined = True  # type: ignore[attr-defined]
    execute_unnamed.driver_version = driver  # type: ignore[attr-defined]
    core.CoreConnection.execute_unnamed = execute_unnamed
    return True


@contextlib.contextmanager
def counted_flushes() -> Iterator[list[int]]:
    """How many times pg8000 flushes its socket inside the block (one per round trip it
    waits for): what the tests and `benchmarks/bench_round_trips.py` count."""
    from pg8000 import core

    flush, count = core._flush, [0]

    def counting(sock: Any) -> None:
        count[0] += 1
        flush(sock)

    core._flush = counting
    try:
        yield count
    finally:
        core._flush = flush


def _on_connect(dbapi_conn: Any, record: Any) -> None:
    _register_pgvector(dbapi_conn, record)
    _apply_search_settings(dbapi_conn, record)


def _cloud_sql_creator(settings: Settings) -> Any:
    global _connector
    from google.cloud.sql.connector import Connector

    _connector = _connector or Connector(refresh_strategy="lazy")

    def connect() -> Any:
        return _connector.connect(
            settings.cloud_sql_instance,
            "pg8000",
            user=settings.db_user,
            password=None if settings.db_iam_auth else settings.db_password,
            db=settings.db_name,
            enable_iam_auth=settings.db_iam_auth,
            ip_type=settings.db_ip_type,
        )

    return connect


def ensure_database(server_url: str, name: str) -> None:
    """CREATE DATABASE if missing (the embedded server starts with `postgres` only)."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def database_url(settings: Settings) -> str:
    """The URL for DATABASE_URL or the embedded server (starting it if needed)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from shared.db.embedded import embedded_url, start_embedded

    socket = start_embedded(settings.pg_data_path)
    ensure_database(embedded_url(socket, "postgres"), settings.db_name)
    return embedded_url(socket, settings.db_name)


_selftested: set[str] = set()


def check_vector_extension(settings: Settings, url: str) -> None:
    """Run the pgvector self-test once per process and database, before any pool opens.

    Raises `VectorSelfTestError` (one clear message, no pool left behind) when the
    extension crashes the server or computes wrong results. Skipped for Cloud SQL,
    whose pgvector Google builds for the machines it runs on, and when
    DB_VECTOR_SELFTEST=false.
    """
    if not settings.db_vector_selftest or url in _selftested:
        return
    from shared.db.selftest import run_vector_selftest

    if settings.database_url:
        run_vector_selftest(url)
    else:
        from importlib.metadata import version

        from shared.db.embedded import PACKAGE, server_log

        run_vector_selftest(url, server_log=server_log(settings.pg_data_path), package=f"{PACKAGE} {version(PACKAGE)}")
    _selftested.add(url)


def source_name(settings: Settings) -> str:
    """Which of the three back ends the settings select (reported by /api/health)."""
    if settings.cloud_sql_instance:
        return "cloud-sql"
    return "database-url" if settings.database_url else "embedded"


def create_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    memoise_placeholders()
    pipeline_unnamed_statements()
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    if settings.cloud_sql_instance:
        engine = sa.create_engine("postgresql+pg8000://", creator=_cloud_sql_creator(settings), **pool)
    else:
        url = database_url(settings)
        check_vector_extension(settings, url)
        engine = sa.create_engine(url, **pool)
    sa.event.listen(engine, "connect", _on_connect)
    log.info("database engine created", extra={"db_source": source_name(settings)})
    return engine


def get_engine() -> Engine:
    """The process-wide engine, created lazily so imports stay cheap."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = create_engine()
    return _engine


def set_engine(engine: Engine | None) -> None:
    """Replace the process engine (tests, CLIs that target another database)."""
    global _engine
    with _engine_lock:
        if _engine is not None and _engine is not engine:
            _engine.dispose()
        _engine = engine
