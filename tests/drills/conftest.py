"""Drill fixtures: real RS256 verification against a loopback key server, the demo
course, and a local stack subprocess for the drills that go over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as gjwt

from tests.fakes import self_signed_key

# Its own project id: firebase-admin caches one app (and its certificate URL) per project.
DRILL_PROJECT = "drill-real-verification"
KID = "drill-kid"


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, Any]:
    key, cert = self_signed_key("securetoken.drill")
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"key": key, "forged": _pem(forged), "cert": cert}


@pytest.fixture(scope="session")
def key_server(signing_keys):
    """Serves {kid: certificate} the way Google's securetoken endpoint does, on loopback."""
    body = json.dumps({KID: signing_keys["cert"]}).encode()
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(time.time())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/certs", "hits": hits}
    server.shutdown()
    server.server_close()


def sign(signing_keys, uid: str, *, key: str = "key", project: str = DRILL_PROJECT, exp_in: int = 3600, **claims):
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "iat": now - 10,
        "exp": now + exp_in,
        "auth_time": now - 10,
        **claims,
    }
    signer = crypt.RSASigner.from_string(signing_keys[key], key_id=KID)
    return gjwt.encode(signer, payload).decode()


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
def course(db):
    """The demo course, without embeddings (retrieval runs on full text)."""
    from local.stack import DEMO_COURSE
    from shared.curriculum import load_course_file

    with db.begin() as conn:
        load_course_file(conn, DEMO_COURSE)
    return db


STACK_PROJECT = "demo-e2e"  # what tests/test_e2e_local_server.start_server configures


@pytest.fixture(scope="session")
def local_stack():
    """`python -m local serve` (embedded Postgres, demo course, offline LLM) on a free
    loopback port, for the drills that go over HTTP; stopped at the end of the session.
    Its folder is not pytest's tmp_path (see tests/conftest.py: server_dir, whose reasons
    hold here; that fixture is per test, this stack per session)."""
    from local.tokens import mint_emulator_token
    from tests.test_e2e_local_server import start_server, stop

    state = Path(tempfile.mkdtemp(prefix="cc-drill-stack-"))
    state.chmod(0o755)
    proc, base, log = start_server(state)
    try:
        yield {
            "base": base,
            "proc": proc,
            "state": state,
            "token": lambda uid, **kw: mint_emulator_token(uid, STACK_PROJECT, **kw),
        }
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(state, ignore_errors=True)
