"""Drill fixtures: real RS256 verification against a loopback key server, the demo
course, and a local stack subprocess for the drills that go over HTTP."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from tests.fakes import cert_server, forged_key, self_signed_key, sign_id_token

# Its own project id: firebase-admin caches one app (and its certificate URL) per project.
DRILL_PROJECT = "drill-real-verification"
KID = "drill-kid"


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, Any]:
    key, cert = self_signed_key("securetoken.drill")
    return {"key": key, "forged": forged_key(), "cert": cert}


@pytest.fixture(scope="session")
def key_server(signing_keys):
    """Serves {kid: certificate} the way Google's securetoken endpoint does, on loopback."""
    with cert_server({KID: signing_keys["cert"]}) as served:
        yield {"url": served.url, "hits": served.hits}


def sign(signing_keys, uid: str, *, key: str = "key", project: str = DRILL_PROJECT, exp_in: int = 3600, **claims):
    return sign_id_token(signing_keys[key], kid=KID, uid=uid, project=project, exp_in=exp_in, **claims)


@pytest.fixture()
def real_auth(settings, key_server, monkeypatch):
    """The app verifies real RS256 tokens (no emulator mode) against the loopback key server."""
    import firebase_admin._token_gen as token_gen

    import shared.http.router as router_module

    monkeypatch.setattr(token_gen, "ID_TOKEN_CERT_URI", key_server["url"])
    real = settings.model_copy(update={"auth_emulator_host": None, "firebase_project_id": DRILL_PROJECT})
    monkeypatch.setattr(router_module, "get_settings", lambda: real)
    # verify_bearer removes firebase-admin's switch from the environment; restore it afterwards.
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099"))
    return real


@pytest.fixture()
def course(demo_course):
    """The demo course (tests/conftest.py), which the drills call `course`."""
    return demo_course


STACK_PROJECT = "demo-e2e"  # tests/test_e2e_local_server.STACK_ENV's project


@pytest.fixture(scope="session")
def local_stack():
    """`python -m local serve` (embedded Postgres, demo course, offline LLM) on a free
    loopback port, for the drills that go over HTTP; stopped at the end of the session."""
    from local.launcher import new_state_dir, start_stack
    from local.tokens import mint_emulator_token
    from tests.test_e2e_local_server import STACK_ENV

    assert STACK_ENV["GOOGLE_CLOUD_PROJECT"] == STACK_PROJECT
    state = new_state_dir("drill-stack")
    stack = start_stack(state, STACK_ENV)
    try:
        yield {
            "base": stack.base,
            "proc": stack.proc,
            "state": stack.state,
            "token": lambda uid, **kw: mint_emulator_token(uid, STACK_PROJECT, **kw),
        }
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
