"""Issue 8 items 4-5: in the cloud, local-only conveniences are refused and a forged
token never passes, whatever the environment says.

Settings are built from a monkeypatched environment and handed to the router
explicitly; the process-wide settings cache is never touched."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import flask
import pytest

from local.tokens import mint_emulator_token
from shared.config import Settings
from shared.http import Request, Router
from shared.http.auth import verify_bearer
from shared.http.errors import ApiError

REPO = Path(__file__).resolve().parents[2]
PROJECT = "prod-cognitive-core"
# A safe cloud configuration: what terraform/ sets.
SAFE_CLOUD = {
    "COGNITIVE_ENV": "cloud",
    "GOOGLE_CLOUD_PROJECT": PROJECT,
    "CLOUD_SQL_INSTANCE": f"{PROJECT}:us-central1:cognitive",
    "DB_IAM_AUTH": "true",
    "DB_USER": f"cc-chat@{PROJECT}.iam",
    "CORS_ORIGINS": f"https://{PROJECT}.web.app",
    "FIREBASE_AUTH_EMULATOR_HOST": "",
}
RUNTIME_AND_DEBUG = ("K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET", "DEBUG", "FLASK_DEBUG", "DATABASE_URL")


@pytest.fixture()
def env(monkeypatch):
    """A clean environment to build settings from; restored after the test (including
    FIREBASE_AUTH_EMULATOR_HOST, which verification rewrites for firebase-admin)."""
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", ""))
    for name in RUNTIME_AND_DEBUG:
        monkeypatch.delenv(name, raising=False)

    def apply(values: dict[str, str | None]) -> Settings:
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        return Settings()

    return apply


def app_for(settings: Settings, reached: list[str]) -> flask.Flask:
    router = Router("secure", settings=settings)

    @router.get("/admin", admin=True)
    def admin(req: Request) -> dict:
        reached.append(req.user.uid)  # stands in for the database work behind the route
        return {"ok": True}

    @router.get("/open", auth=False)
    def open_route(req: Request) -> dict:
        reached.append("anonymous")
        return {"ok": True}

    app = flask.Flask("secure")

    @app.route("/<path:path>", methods=["GET", "OPTIONS"])
    def serve(path):
        return router.handle(flask.request)

    return app


def unsigned_admin(project: str = PROJECT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_emulator_token('root', project, admin=True)}"}


def test_the_reported_case_unsigned_admin_token_in_cloud_mode_is_401(env):
    """COGNITIVE_ENV=cloud, GOOGLE_CLOUD_PROJECT set, FIREBASE_AUTH_EMULATOR_HOST unset:
    emulator mode used to be the default, so this token reached the database."""
    settings = env({**SAFE_CLOUD, "FIREBASE_AUTH_EMULATOR_HOST": None})
    assert settings.auth_emulator_host is None and settings.cloud_refusals() == []
    reached: list[str] = []
    response = app_for(settings, reached).test_client().get("/admin", headers=unsigned_admin())
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"
    assert reached == []


@pytest.mark.parametrize(
    "where_we_are",
    [
        {"COGNITIVE_ENV": "cloud"},
        {"COGNITIVE_ENV": "local", "K_SERVICE": "cc-prod-chat"},  # Cloud Run / Cloud Functions
        {"COGNITIVE_ENV": "test", "CLOUD_RUN_JOB": "cc-prod-export"},  # a Cloud Run job
    ],
)
def test_emulator_mode_in_the_cloud_refuses_to_serve_with_a_log_line(env, caplog, monkeypatch, where_we_are):
    import shared.http.router as router_module

    monkeypatch.setattr(router_module, "_refusals_logged", set())  # logged once per process
    settings = env({**SAFE_CLOUD, **where_we_are, "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"})
    assert settings.in_cloud
    reached: list[str] = []
    client = app_for(settings, reached).test_client()
    with caplog.at_level(logging.CRITICAL, logger="shared.http"):
        for path, headers in (("/admin", unsigned_admin()), ("/open", {})):
            response = client.get(path, headers=headers)
            assert response.status_code == 503
            err = response.get_json()["error"]
            assert err["code"] == "misconfigured"
            assert "FIREBASE" not in err["message"]  # the reason is for the operator's log
    assert reached == []
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "refusing to serve" in critical[0].getMessage()
    assert "FIREBASE_AUTH_EMULATOR_HOST" in critical[0].getMessage()


def test_refusal_is_logged_at_cold_start(env, caplog, monkeypatch):
    """functions-framework executes the function module inside its app's context: the
    router says why it will refuse as soon as it is created, before any request."""
    import shared.http.router as router_module

    monkeypatch.setattr(router_module, "_refusals_logged", set())
    settings = env({**SAFE_CLOUD, "CORS_ORIGINS": "*"})
    with caplog.at_level(logging.CRITICAL, logger="shared.http"), flask.Flask("cold").app_context():
        Router("cold", settings=settings)
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "CORS_ORIGINS" in critical[0].getMessage()


def test_forged_token_refused_in_the_cloud_whatever_the_environment_says(env):
    """Even with emulator mode configured and firebase-admin's switch in the process
    environment, verification in the cloud never accepts an unsigned token."""
    settings = env({**SAFE_CLOUD, "COGNITIVE_ENV": "local", "K_SERVICE": "cc-prod-chat"})
    settings = settings.model_copy(update={"auth_emulator_host": "127.0.0.1:9099"})
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    assert not settings.unsigned_tokens_allowed
    with pytest.raises(ApiError) as info:
        verify_bearer(unsigned_admin()["Authorization"], settings)
    assert info.value.status == 401
    assert "FIREBASE_AUTH_EMULATOR_HOST" not in os.environ  # firebase-admin's switch is off


def test_emulator_mode_still_works_locally_when_opted_in(env):
    settings = env({"COGNITIVE_ENV": "local", "GOOGLE_CLOUD_PROJECT": PROJECT, "FIREBASE_AUTH_EMULATOR_HOST": "x:1"})
    assert settings.unsigned_tokens_allowed and settings.cloud_refusals() == []
    principal = verify_bearer(unsigned_admin()["Authorization"], settings)
    assert principal.uid == "root" and principal.is_admin


def test_function_target_alone_is_not_the_cloud(env):
    """functions-framework sets FUNCTION_TARGET in-process (the local server too)."""
    settings = env({"COGNITIVE_ENV": "local", "FUNCTION_TARGET": "chat"})
    assert not settings.in_cloud


# --- the local stack -------------------------------------------------------------------
def test_local_cli_refuses_to_run_in_the_cloud(env, monkeypatch, capsys):
    import local.__main__ as cli

    settings = env({**SAFE_CLOUD, "COGNITIVE_ENV": "local", "K_SERVICE": "cc-prod-chat"})
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    for argv in (["token", "--uid", "root", "--admin"], ["serve"], ["prepare"]):
        assert cli.main(argv) == 2
    out = capsys.readouterr()
    assert "eyJ" not in out.out  # no token was printed


def test_local_server_refuses_to_build_in_the_cloud(env, monkeypatch):
    import local.server as server

    settings = env({**SAFE_CLOUD})
    monkeypatch.setattr(server, "get_settings", lambda: settings)
    with pytest.raises(server.LocalServerRefused):
        server.build_app()


def test_local_stack_opts_into_emulator_mode_with_zero_configuration(env, monkeypatch):
    import local.__main__ as cli

    env({"COGNITIVE_ENV": "local", "FIREBASE_AUTH_EMULATOR_HOST": None})
    monkeypatch.setattr(cli, "get_settings", lambda: Settings())
    monkeypatch.setattr(cli, "reset_settings_cache", lambda: None)
    assert Settings().auth_emulator_host is None  # nothing opts in by default...
    assert cli.local_settings().auth_emulator_host == cli.LOCAL_AUTH_EMULATOR_HOST  # ...but the local stack


def test_local_stack_keeps_an_explicit_choice_of_real_verification(env, monkeypatch):
    import local.__main__ as cli

    env({"COGNITIVE_ENV": "local", "FIREBASE_AUTH_EMULATOR_HOST": ""})
    monkeypatch.setattr(cli, "get_settings", lambda: Settings())
    monkeypatch.setattr(cli, "reset_settings_cache", lambda: None)
    assert cli.local_settings().auth_emulator_host is None


def _run_local(args: list[str], **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_AND_DEBUG}
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "local", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_local_token_command_works_with_zero_configuration():
    done = _run_local(["token", "--uid", "alice"], COGNITIVE_ENV="local", FIREBASE_AUTH_EMULATOR_HOST=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().count(".") == 2


def test_local_token_command_refuses_in_the_cloud():
    done = _run_local(["token", "--uid", "root", "--admin"], COGNITIVE_ENV="local", K_SERVICE="cc-prod-chat")
    assert done.returncode == 2
    assert "eyJ" not in done.stdout  # no token printed; the refusal is logged
    assert "refusing to run the local stack in the cloud" in done.stdout
