"""Run a SQL file on the application's database, one statement at a time.

    python terraform/modules/cognitive_core/scripts/run_sql.py FILE.sql

cloudbuild.yaml runs templates/db_runtime_grants.sql with it after the migrations,
as the migrator, through the same engine the functions use (Cloud SQL connector,
IAM auth, from the environment). pg8000 sends one statement per query, hence the
split; the files it runs keep `;` out of comments and string literals.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def statements(text: str) -> list[str]:
    """The statements of a plain SQL file: `--` comment lines dropped, split on `;`."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def run(conn, text: str) -> int:  # conn: sqlalchemy.Connection
    import sqlalchemy as sa

    parts = statements(text)
    for statement in parts:
        conn.execute(sa.text(statement))
    return len(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from shared.db import get_engine

    with get_engine().begin() as conn:
        count = run(conn, Path(argv[0]).read_text())
    print(f"{argv[0]}: {count} statements applied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
