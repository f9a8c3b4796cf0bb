"""Alembic environment: runs migrations on the engine the application uses.

A transaction-scoped advisory lock serialises concurrent runs (two function
instances cold-starting at once, or a dev server and a test run), so a second
runner waits and then finds nothing to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

MIGRATION_LOCK_ID = 7_453_001  # arbitrary, constant: "cognitive-core migrations"


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from shared.db.engine import get_engine

        with get_engine().connect() as conn:
            _run(conn)
            conn.commit()
    else:
        _run(connection)


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported; run against a database")
run_migrations_online()
