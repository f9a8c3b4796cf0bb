"""Authentication and roles.

Emulator mode (the local default) is exercised through HTTP; real verification
(RS256 against Google's certificate endpoint) runs against a certificate served
on loopback, so the real firebase-admin and google-auth code verify a real
signature, with no network."""

from __future__ import annotations

import time

import pytest

from shared.http.auth import role_from_claims, verify_bearer
from shared.http.errors import ApiError
from tests.fakes import cert_server as loopback_cert_server
from tests.fakes import forged_key, self_signed_key, sign_id_token

TEST_PROJECT = "demo-cognitive-core-test"


def status_of(fn) -> int:
    with pytest.raises(ApiError) as info:
        fn()
    return info.value.status


# --- through HTTP, emulator mode ------------------------------------------------------
def test_no_token_is_401(client, db):
    response = client.get("/api/chat/topics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "token-without-scheme"])
def test_malformed_authorization_header_is_401(client, header):
    response = client.get("/api/chat/topics", headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize("token_text", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_token_is_401(client, token_text):
    response = client.get("/api/chat/topics", headers={"Authorization": f"Bearer {token_text}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "The ID token is invalid."


def test_token_for_another_project_is_401(client, token):
    other = token("alice", project="someone-elses-project")
    response = client.get("/api/chat/topics", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 401


def test_expired_emulator_token_is_401(client, token):
    stale = token("alice", issued_at=time.time() - 7200, expires_in=3600)
    response = client.get("/api/chat/topics", headers={"Authorization": f"Bearer {stale}"})
    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]["message"]


def test_valid_token_reaches_the_handler(client, bearer, db):
    response = client.get("/api/chat/topics", headers=bearer("alice"))
    assert response.status_code == 200
    assert response.get_json()["topics"] == []


def test_student_reading_another_students_data_is_403(client, bearer, db):
    for path in (
        "/api/grading/attempts?user_id=bob",
        "/api/prediction/mastery?user_id=bob",
        "/api/chat/sessions?user_id=bob",
    ):
        response = client.get(path, headers=bearer("alice"))
        assert response.status_code == 403, path
        assert response.get_json()["error"]["code"] == "forbidden"


def test_student_reading_own_data_and_admin_reading_anyones(client, bearer, db):
    assert client.get("/api/grading/attempts?user_id=alice", headers=bearer("alice")).status_code == 200
    assert client.get("/api/grading/attempts", headers=bearer("alice")).get_json()["user_id"] == "alice"
    assert client.get("/api/grading/attempts?user_id=bob", headers=bearer("root", admin=True)).status_code == 200


def test_admin_only_route_as_student_is_403(client, bearer, db):
    assert client.get("/api/feedback/review-queue", headers=bearer("alice")).status_code == 403
    response = client.post("/api/feedback/label", json={"interaction_id": "x", "label": "y"}, headers=bearer("alice"))
    # Role is checked before the body is validated: a student learns nothing about the schema.
    assert response.status_code == 403
    assert client.get("/api/feedback/review-queue", headers=bearer("root", admin=True)).status_code == 200


def test_roles_from_custom_claims():
    assert role_from_claims({"role": "admin"}) == "admin"
    assert role_from_claims({"admin": True}) == "admin"
    assert role_from_claims({"admin": "yes"}) == "student"
    assert role_from_claims({}) == "student"


# --- real verification (signature, expiry) against a loopback certificate server ---------
REAL_PROJECT = "real-verification-project"


@pytest.fixture(scope="module")
def signing_key():
    return self_signed_key("securetoken.test")


@pytest.fixture(scope="module")
def cert_server(signing_key):
    """Serves {kid: certificate} the way Google's securetoken endpoint does."""
    with loopback_cert_server({"test-kid": signing_key[1]}) as served:
        yield served.url


@pytest.fixture()
def real_settings(settings, cert_server, monkeypatch):
    import firebase_admin._token_gen as token_gen

    # The verifier reads the certificate URL when the app's client is created.
    monkeypatch.setattr(token_gen, "ID_TOKEN_CERT_URI", cert_server)
    yield settings.model_copy(update={"auth_emulator_host": None, "firebase_project_id": REAL_PROJECT})


def signed_token(signing_key, *, uid="alice", exp_in=3600, project=REAL_PROJECT, kid="test-kid", **claims):
    return sign_id_token(signing_key[0], kid=kid, uid=uid, project=project, exp_in=exp_in, **claims)


def test_real_verification_accepts_a_signed_token(real_settings, signing_key):
    principal = verify_bearer(f"Bearer {signed_token(signing_key, role='admin')}", real_settings)
    assert principal.uid == "alice" and principal.is_admin


def test_real_verification_rejects_expired_token(real_settings, signing_key):
    expired = signed_token(signing_key, exp_in=-600)
    with pytest.raises(ApiError) as info:
        verify_bearer(f"Bearer {expired}", real_settings)
    assert info.value.status == 401 and "expired" in info.value.message


def test_real_verification_rejects_wrong_project(real_settings, signing_key):
    token_text = signed_token(signing_key, project="another-project")
    assert status_of(lambda: verify_bearer(f"Bearer {token_text}", real_settings)) == 401


def test_real_verification_rejects_bad_signature(real_settings, signing_key):
    forged = signed_token((forged_key(), signing_key[1]))
    assert status_of(lambda: verify_bearer(f"Bearer {forged}", real_settings)) == 401


def test_real_verification_rejects_unsigned_emulator_token(real_settings, token):
    unsigned = token("alice", project=REAL_PROJECT)
    assert status_of(lambda: verify_bearer(f"Bearer {unsigned}", real_settings)) == 401


def test_real_verification_rejects_a_token_issued_in_the_future(real_settings, signing_key):
    now = int(time.time())
    future = signed_token(signing_key, iat=now + 365 * 86400, auth_time=now + 365 * 86400, exp_in=400 * 86400)
    assert status_of(lambda: verify_bearer(f"Bearer {future}", real_settings)) == 401


def test_cloud_verifies_real_tokens_even_with_the_emulator_switch_in_the_environment(
    real_settings, signing_key, token, monkeypatch
):
    """Whatever the environment says: with emulator mode configured and firebase-admin's
    own switch set, a cloud function still checks signatures."""
    import os

    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    cloud = real_settings.model_copy(update={"environment": "cloud", "auth_emulator_host": "127.0.0.1:9099"})
    forged = signed_token((forged_key(), signing_key[1]), role="admin")  # RS256 with a known kid, wrong key
    assert status_of(lambda: verify_bearer(f"Bearer {forged}", cloud)) == 401
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    unsigned = token("root", admin=True, project=REAL_PROJECT)
    assert status_of(lambda: verify_bearer(f"Bearer {unsigned}", cloud)) == 401
    genuine = signed_token(signing_key, role="admin")
    assert verify_bearer(f"Bearer {genuine}", cloud).is_admin
