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


def test_emulator_mode_is_an_opt_in_not_the_default(monkeypatch):
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = Settings()
    assert settings.auth_emulator_host is None and not settings.unsigned_tokens_allowed
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert Settings().unsigned_tokens_allowed


CLOUD_VARS = ("COGNITIVE_ENV", "K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET")


@pytest.mark.parametrize(
    "env, cloud",
    [
        ({}, False),
        ({"COGNITIVE_ENV": "test"}, False),
        ({"COGNITIVE_ENV": "cloud"}, True),
        ({"K_SERVICE": "cc-prod-chat"}, True),
        ({"COGNITIVE_ENV": "local", "K_SERVICE": "cc-prod-chat"}, True),
        ({"CLOUD_RUN_JOB": "cc-prod-job"}, True),
        ({"K_SERVICE": ""}, False),
        ({"FUNCTION_TARGET": "chat"}, False),  # functions-framework sets it locally too
    ],
)
def test_cloud_detection(monkeypatch, env, cloud):
    from shared.config import process_env_is_cloud

    for name in CLOUD_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().in_cloud is cloud
    assert process_env_is_cloud() is cloud


SAFE_CLOUD = {
    "COGNITIVE_ENV": "cloud",
    "CLOUD_SQL_INSTANCE": "p:us-central1:i",
    "DB_IAM_AUTH": "true",
    "DB_USER": "cc-chat@p.iam",
    "CORS_ORIGINS": "https://p.web.app,https://p.firebaseapp.com",
    "FIREBASE_AUTH_EMULATOR_HOST": "",
}


def _settings(monkeypatch, values):
    for name in ("DATABASE_URL", "DB_PASSWORD", "DEBUG", "FLASK_DEBUG", "K_SERVICE", "CLOUD_RUN_JOB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return Settings()


def test_a_safe_cloud_configuration_has_no_refusals(monkeypatch):
    assert _settings(monkeypatch, SAFE_CLOUD).cloud_refusals() == []


@pytest.mark.parametrize(
    "change, mentions",
    [
        ({"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST"),
        ({"CORS_ORIGINS": "*"}, "'*'"),
        ({"CORS_ORIGINS": "https://p.web.app,http://localhost:5000"}, "not https"),
        ({"CORS_ORIGINS": None}, "not https"),  # the local default origins
        ({"CLOUD_SQL_INSTANCE": None}, "embedded"),
        ({"DB_IAM_AUTH": "false"}, "DB_PASSWORD"),
        ({"DB_USER": None, "DB_IAM_AUTH": "false", "DB_PASSWORD": "pw"}, "postgres"),
        ({"CLOUD_SQL_INSTANCE": None, "DATABASE_URL": "postgresql://db.internal/cognitive"}, "DATABASE_URL"),
        ({"DEBUG": "1"}, "DEBUG"),
        ({"FLASK_DEBUG": "true"}, "DEBUG"),
    ],
)
def test_each_local_convenience_is_refused_in_the_cloud(monkeypatch, change, mentions):
    problems = _settings(monkeypatch, {**SAFE_CLOUD, **change}).cloud_refusals()
    assert len(problems) == 1 and mentions in problems[0], problems


def test_the_same_conveniences_are_fine_locally(monkeypatch):
    local = {
        "COGNITIVE_ENV": "local",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
        "CORS_ORIGINS": "*",
        "CLOUD_SQL_INSTANCE": None,
        "DEBUG": "1",
    }
    assert _settings(monkeypatch, local).cloud_refusals() == []


def test_dotenv_file_is_ignored_in_the_cloud(monkeypatch, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099\n")
    for name in (*CLOUD_VARS, "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(_env_file=dotenv).auth_emulator_host == "127.0.0.1:9099"  # locally it is read
    monkeypatch.setenv("K_SERVICE", "cc-prod-chat")
    assert Settings(_env_file=dotenv).auth_emulator_host is None


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
