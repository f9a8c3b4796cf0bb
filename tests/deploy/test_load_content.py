"""scripts/load_content.py, the cloud content load, on the embedded Postgres: the demo
course goes in as a course file (curriculum, questions, knowledge nodes), idempotently."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "local" / "demo" / "course.json"


def load_module():
    spec = importlib.util.spec_from_file_location("load_content", REPO / "scripts" / "load_content.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nothing_to_load_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        load_module().main([])
    assert exc.value.code == 2


def test_missing_local_file_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="no such file"):
        load_module().fetch(str(tmp_path / "absent.json"), tmp_path)


def test_loads_the_course_file_twice_without_duplicates(db, capsys):
    import sqlalchemy as sa

    module = load_module()
    assert module.main(["--course", str(DEMO), "--allow-no-embeddings"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # logs come first
    assert first[str(DEMO)]["topics"] > 0 and first[str(DEMO)]["questions"] > 0
    with db.connect() as conn:
        counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in ("topics", "questions")]
    assert module.main(["--course", str(DEMO), "--allow-no-embeddings"]) == 0
    capsys.readouterr()
    with db.connect() as conn:
        again = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in ("topics", "questions")]
    assert counts == again and counts[0] > 0
