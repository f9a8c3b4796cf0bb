"""Export the completed attempts the predictor retrains on, as JSONL.

    python -m shared.prediction.export OUT.jsonl

One completed attempt a line, ordered by user and completion time:
`{"user_id", "topic_id", "difficulty", "credit", "time_seconds"}` (credit in [0, 1] as
in the history features). The trainer (`model_export/train_predictor.py`, which runs
without database packages) reads it from $PREDICTOR_ATTEMPTS_JSONL. Streamed with a
server-side cursor so a large table never sits in memory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sqlalchemy as sa

_SQL = """
SELECT user_id, topic_id, difficulty,
       COALESCE(score / 10.0, CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS credit,
       time_seconds
  FROM task_attempts
 WHERE status = 'completed'
 ORDER BY user_id, completed_at, id
"""


def export_attempts(conn: sa.Connection, path: Path) -> int:
    """Write every completed attempt to `path`; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as out:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(sa.text(_SQL))
        for user_id, topic_id, difficulty, credit, seconds in result:
            out.write(
                json.dumps(
                    {
                        "user_id": user_id,
                        "topic_id": topic_id,
                        "difficulty": int(difficulty),
                        "credit": float(credit),
                        "time_seconds": None if seconds is None else float(seconds),
                    }
                )
                + "\n"
            )
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    from shared.db import get_engine

    with get_engine().connect() as conn:
        n = export_attempts(conn, args.out)
    print(f"exported {n} completed attempts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
