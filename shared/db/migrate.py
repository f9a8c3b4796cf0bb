"""Run the schema migrations: at local start-up, and by CLI for the cloud.

    python -m shared.db.migrate upgrade      # to head (idempotent)
    python -m shared.db.migrate current      # print the applied revision
    python -m shared.db.migrate downgrade base

Alembic is configured in code (no alembic.ini) so a deployed function's zip,
which carries `shared/`, carries its migrations too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Bring the schema to `revision`; a no-op when it is already there."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    # Pooled connections opened before the vector type existed lack its result
    # adapter; new ones register it.
    engine.dispose()
    return current_revision(engine)


def downgrade(engine: sa.Engine, revision: str) -> str | None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
    return current_revision(engine)


def main(argv: list[str] | None = None) -> int:
    from shared.db.engine import get_engine
    from shared.logs import configure_logging

    configure_logging()
    parser = argparse.ArgumentParser(
        prog="python -m shared.db.migrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade", help="apply migrations (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="revert migrations to a revision ('base' = empty)")
    down.add_argument("revision")
    sub.add_parser("current", help="print the applied revision")
    args = parser.parse_args(argv)

    engine = get_engine()
    if args.cmd == "upgrade":
        print(f"schema at {upgrade(engine, args.revision)} (head {head_revision()})")
    elif args.cmd == "downgrade":
        print(f"schema at {downgrade(engine, args.revision)}")
    else:
        print(current_revision(engine) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
