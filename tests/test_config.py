"""Settings from the environment, and database URL handling."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.db.engine import normalize_url, source_name


def test_cors_origins_from_comma_separated_env(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", " https://a.example , https://b.example,")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_empty_emulator_host_means_real_verification(monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "")
    assert Settings().auth_emulator_host is None


def test_defaults_are_local(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MODEL_STORE_URI", raising=False)
    s = Settings()
    assert s.pg_data_path == tmp_path / "pgdata"
    assert s.model_store == str(tmp_path / "models")
    assert source_name(s) == "embedded"


def test_database_source_selection(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    assert source_name(Settings()) == "database-url"
    monkeypatch.setenv("CLOUD_SQL_INSTANCE", "proj:us-central1:inst")
    assert source_name(Settings()) == "cloud-sql"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p@db:5432/x", "postgresql+pg8000://u:p@db:5432/x"),
        ("postgres://u@db/x", "postgresql+pg8000://u@db/x"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql+pg8000://postgres:@/postgres?unix_sock=%2Ftmp%2Fpg%2F.s.PGSQL.5432",
        ),
        ("postgresql+pg8000://u@h/x", "postgresql+pg8000://u@h/x"),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


def test_normalize_url_rejects_other_databases():
    with pytest.raises(ValueError):
        normalize_url("mysql://u@h/x")
