"""Dataset versions: the nightly Parquet export, its manifest, idempotency, what personal
data leaves the database, and reading a version back."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid

import pyarrow as pa
import pytest
import sqlalchemy as sa

from shared.artifacts.store import LocalStore
from shared.learning import datasets
from shared.learning.datasets import (
    CorruptDatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    ExportRefusedError,
    Pseudonymiser,
    export_dataset,
    list_dates,
    read_dataset,
    read_dates,
    redact,
)

DAY = dt.date(2026, 3, 14)
KEY = Pseudonymiser("test-key-of-at-least-16-bytes")
SECRET_COMMENT = "my tutor is awful, call me on 0612345678"
SECRET_ANSWER = "alice's private typed answer"


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss), tzinfo=dt.UTC)


@pytest.fixture()
def history(ldb):
    """One day of activity for alice and bob, plus rows just outside the day."""
    with ldb.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, email) VALUES ('alice', 'alice@example.com'), ('bob', NULL)"))
        conn.execute(sa.text("INSERT INTO users (id, role) VALUES ('root', 'admin')"))
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES ('t1', 'c', 'T1')"))

        def interaction(user: str, when: dt.datetime, query: str, **extra) -> str:
            probs = json.dumps({"debugging_help": 0.41})
            cols = {"request_id": "req-secret", "user_id": user, "query": query, "created_at": when,
                    "intent": "debugging_help", "intent_confidence": 0.41, "needs_review": True,
                    "reply": "the LLM reply", "intent_probs": probs, **extra}  # fmt: skip
            names = ", ".join(cols)
            values = ", ".join(
                f"CAST(:{k} AS jsonb)" if k in ("intent_probs", "model_versions") else f":{k}" for k in cols
            )
            return str(
                conn.execute(
                    sa.text(f"INSERT INTO interactions ({names}) VALUES ({values}) RETURNING id"), cols
                ).scalar()
            )

        first = interaction(
            "alice",
            at(DAY, 9),
            "my loop fails, mail me at alice@example.com or +31 6 1234 5678",
            feedback_score=-1,
            feedback_comment=SECRET_COMMENT,
            feedback_at=at(DAY, 9, 5),
            model_versions=json.dumps({"intent": "v1"}),
        )
        second = interaction("bob", at(DAY, 23, 59, 59), "what is a closure")
        interaction("alice", at(DAY, 0) - dt.timedelta(microseconds=1), "yesterday's question")
        interaction("alice", at(DAY + dt.timedelta(days=1), 0), "tomorrow's question")
        conn.execute(
            sa.text(
                """INSERT INTO label_events
                          (interaction_id, old_label, new_label, labelled_by, labelled_at, model_version)
                   VALUES (:i, NULL, 'debugging_help', 'root', :t1, 'v1'),
                          (:i, 'debugging_help', 'concept_explanation', 'root', :t2, 'v1')"""
            ),
            {"i": first, "t1": at(DAY, 10), "t2": at(DAY, 11)},
        )
        for user, status, answer, when in (
            ("alice", "completed", SECRET_ANSWER, at(DAY, 12)),
            ("bob", "completed", "b", at(DAY, 13)),
            ("alice", "repeat", "again", at(DAY, 12, 1)),
            ("alice", "predicted", None, None),
        ):
            conn.execute(
                sa.text(
                    """INSERT INTO task_attempts (user_id, topic_id, status, answer, correct, score, feedback,
                                                 time_seconds, completed_at, predicted_correct)
                       VALUES (:u, 't1', :s, :a, true, 8, 'grader text quoting the answer', 30, :w, 0.6)"""
                ),
                {"u": user, "s": status, "a": answer, "w": when},
            )
        conn.execute(
            sa.text(
                """INSERT INTO generation_log (interaction_id, task, provider, model, prompt, raw_response, status,
                                              tokens_in, tokens_out, cost_usd, created_at)
                   VALUES (:i, 'chat', 'offline', 'offline-composer-1', 'PROMPT with alice profile', 'RAW', 'ok',
                           10, 20, 0.000123, :t)"""
            ),
            {"i": first, "t": at(DAY, 9)},
        )
    return {"first": first, "second": second}


def all_strings(version) -> list[str]:
    out = []
    for table in version.tables.values():
        for column in table.columns:
            for value in column.to_pylist():
                if isinstance(value, str):
                    out.append(value)
                elif isinstance(value, list):
                    out.extend(v for v in value if isinstance(v, str))
    return out


def test_export_writes_partitioned_parquet_and_a_manifest(history, ldb, tmp_path):
    store = LocalStore(tmp_path / "datasets")
    result = export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    assert result.written
    for table in ("interactions", "labels", "feedback", "attempts", "generation_log"):
        assert (tmp_path / "datasets" / table / "date=2026-03-14" / "part-00000.parquet").is_file()
    manifest = json.loads((tmp_path / "datasets" / "manifests" / "2026-03-14.json").read_text())
    assert manifest["schema_version"] == datasets.SCHEMA_VERSION and manifest["date"] == "2026-03-14"
    rows = {name: t["rows"] for name, t in manifest["tables"].items()}
    expected = {"interactions": 2, "labels": 2, "feedback": 1, "attempts": 2, "generation_log": 1}
    assert rows == expected | {"silver_labels": 0, "conversations": 0}
    assert all(len(t["sha256"]) == 64 for t in manifest["tables"].values())

    version = read_dataset(store, "2026-03-14")
    interactions = version["interactions"].to_pylist()
    assert [i["id"] for i in interactions] == [history["first"], history["second"]]  # in time order
    assert interactions[0]["intent_probs"] == '{"debugging_help":0.41}'
    assert [r["label"] for r in version["labels"].to_pylist()] == ["debugging_help", "concept_explanation"]
    assert version["labels"].to_pylist()[0]["query"].startswith("my loop fails")
    assert version["feedback"].to_pylist()[0]["has_comment"] is True
    assert version["generation_log"].to_pylist()[0]["cost_usd"] == pytest.approx(0.000123)
    assert version["attempts"].schema == datasets.TABLES["attempts"].schema
    assert list_dates(store) == [DAY]

    # Hive layout: pyarrow.dataset reads a table's partitions directly as well.
    import pyarrow.dataset as pads

    hive = pads.dataset(tmp_path / "datasets" / "interactions", format="parquet", partitioning="hive")
    assert hive.to_table().num_rows == 2


def test_personal_data_that_leaves_is_pseudonymised_or_dropped(history, ldb, tmp_path):
    store = LocalStore(tmp_path / "datasets")
    export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    version = read_dataset(store, DAY)
    strings = all_strings(version)
    for secret in ("alice", "bob", "root", "alice@example.com", SECRET_COMMENT, SECRET_ANSWER, "req-secret",
                   "the LLM reply", "PROMPT with alice profile", "RAW", "grader text quoting the answer"):  # fmt: skip
        assert not any(secret in s for s in strings), secret
    assert not any("1234 5678" in s for s in strings)

    users = {r["user_pseudonym"] for r in version["interactions"].to_pylist()}
    assert users == {KEY("alice"), KEY("bob")} and all(len(u) == 32 for u in users)
    # the same student has the same pseudonym in every table, so histories still join
    assert version["feedback"].to_pylist()[0]["user_pseudonym"] == KEY("alice")
    assert {r["user_pseudonym"] for r in version["attempts"].to_pylist()} == users
    assert Pseudonymiser("another-key-of-16-bytes+")("alice") != KEY("alice")
    assert version.manifest["pseudonymisation"]["key_id"] == KEY.key_id

    query = version["interactions"].to_pylist()[0]["query"]
    assert query == "my loop fails, mail me at <email> or <number>"
    columns = set(version["interactions"].column_names)
    assert not columns & {"user_id", "reply", "feedback_comment", "request_id", "labelled_by"}
    assert not set(version["attempts"].column_names) & {"answer", "feedback", "user_id"}
    assert not set(version["generation_log"].column_names) & {"prompt", "raw_response", "error", "request_id"}


def test_export_is_idempotent_per_date(history, ldb, tmp_path):
    store = LocalStore(tmp_path / "a")
    first = export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    files = {k: store.read_bytes(k) for k in store.list()}
    with pytest.raises(DatasetExistsError) as refused:
        export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    assert refused.value.manifest == first.manifest
    assert {k: store.read_bytes(k) for k in store.list()} == files

    forced = export_dataset(ldb, store, DAY, pseudonymiser=KEY, force=True)
    assert forced.written and {k: store.read_bytes(k) for k in store.list()} == files  # the same bytes

    other = LocalStore(tmp_path / "b")
    export_dataset(ldb, other, DAY, pseudonymiser=KEY)
    assert {k: other.read_bytes(k) for k in other.list()} == files


def test_an_unfinished_day_is_refused(ldb, tmp_path):
    store = LocalStore(tmp_path)
    today = dt.datetime.now(dt.UTC).date()
    for day in (today, today + dt.timedelta(days=3)):
        with pytest.raises(ExportRefusedError):
            export_dataset(ldb, store, day, pseudonymiser=KEY)
    assert store.list() == []


def test_an_empty_day_is_a_version_with_empty_tables(ldb, tmp_path):
    store = LocalStore(tmp_path)
    result = export_dataset(ldb, store, dt.date(2020, 1, 1), pseudonymiser=KEY)
    assert {t["rows"] for t in result.manifest["tables"].values()} == {0}
    version = read_dataset(store, "2020-01-01")
    assert version["labels"].num_rows == 0 and version["labels"].schema == datasets.TABLES["labels"].schema


def test_reading_checks_the_manifest(history, ldb, tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(DatasetNotFoundError):
        read_dataset(store, DAY)
    export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    path = tmp_path / "feedback" / "date=2026-03-14" / "part-00000.parquet"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CorruptDatasetError):
        read_dataset(store, DAY)
    assert read_dataset(store, DAY, ["interactions"]).tables.keys() == {"interactions"}
    path.unlink()
    with pytest.raises(CorruptDatasetError):
        read_dataset(store, DAY, ["feedback"])


def test_read_dates_concatenates_versions(history, ldb, tmp_path):
    store = LocalStore(tmp_path)
    export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    export_dataset(ldb, store, DAY + dt.timedelta(days=1), pseudonymiser=KEY)
    table = read_dates(str(tmp_path), [DAY + dt.timedelta(days=1), DAY], "interactions")
    assert [r["query"] for r in table.to_pylist()][-1] == "tomorrow's question"
    assert table.num_rows == 3
    assert read_dates(store, [], "attempts").schema == datasets.TABLES["attempts"].schema


def test_the_cloud_refuses_to_export_without_a_key(monkeypatch):
    from shared.config import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "environment", "cloud")
    monkeypatch.setattr(settings, "dataset_pseudonym_key", None)
    with pytest.raises(ExportRefusedError):
        datasets.pseudonymiser_from_settings(settings)
    with pytest.raises(ExportRefusedError):
        Pseudonymiser("short")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("why does x.append(4) fail", "why does x.append(4) fail"),
        ("range(10) vs range(1000000)", "range(10) vs range(1000000)"),
        ("write to bob.smith+tutor@uni.edu", "write to <email>"),
        ("call 06-12 34 56 78 please", "call <number> please"),
        ("card 4111111111111111 expired", "card <number> expired"),
        ("git clone https://user:pw@host/repo", "git clone <url>"),
        (None, None),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_cli_exports_then_leaves_the_version_alone(history, ldb, tmp_path, capsys):
    from shared.learning.export import main

    assert main(["--date", "2026-03-14", "--store", str(tmp_path)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["tables"]["interactions"]["rows"] == 2
    assert main(["--date", "2026-03-14", "--store", str(tmp_path)]) == 0
    assert "already exists" in capsys.readouterr().err
    assert main(["--date", "14/03/2026", "--store", str(tmp_path)]) == 2
    assert main(["--date", dt.datetime.now(dt.UTC).date().isoformat(), "--store", str(tmp_path)]) == 2


def test_export_to_gcs(history, ldb, monkeypatch):
    """The same code path on the GCS back end (gcp-storage-emulator on loopback)."""
    server_mod = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_mod.create_server("127.0.0.1", port, in_memory=True, default_bucket="artifacts")
    server.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        uri = f"gs://artifacts/run-{uuid.uuid4().hex[:8]}/datasets"
        store = datasets.open_datasets_store(uri)
        export_dataset(ldb, store, DAY, pseudonymiser=KEY)
        assert store.exists("interactions/date=2026-03-14/part-00000.parquet")
        version = read_dataset(uri, "2026-03-14")
        assert version["attempts"].num_rows == 2
        assert list_dates(store) == [DAY]
        assert isinstance(version["labels"], pa.Table)
    finally:
        server.stop()


def test_the_training_job_reads_what_the_export_wrote(history, ldb, tmp_path):
    """The contract between the exporter (serving venv) and the training job's reader
    (model_export.datasets, which runs where the database packages are not installed)."""
    from model_export.datasets import list_dates as job_dates
    from model_export.datasets import load_snapshot

    store = LocalStore(tmp_path / "datasets")
    export_dataset(ldb, store, DAY, pseudonymiser=KEY)
    assert job_dates(str(tmp_path / "datasets")) == ["2026-03-14"]
    snapshot = load_snapshot(str(tmp_path / "datasets"), "latest")
    assert snapshot.date == "2026-03-14"
    assert snapshot.rows == {
        "attempts": 2,
        "feedback": 1,
        "generation_log": 1,
        "interactions": 2,
        "labels": 2,
        "silver_labels": 0,
        "conversations": 0,
    }
    # Two label events of one interaction (a relabel): the job trains on the last one.
    assert [label.label for label in snapshot.labels] == ["concept_explanation"]
    assert snapshot.labels[0].text.startswith("my loop fails")
    assert len(snapshot.attempts) == 2
    assert all(a.user_id and a.user_id != "alice" for a in snapshot.attempts)  # pseudonyms, not uids
    assert {a.correct for a in snapshot.attempts} <= {0.0, 1.0}
