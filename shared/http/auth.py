"""Firebase ID token verification and the two roles (student, admin).

The token is verified by firebase-admin: full RS256 verification against
Google's certificates, unless the local stack or the tests opted into Auth
emulator mode by setting `FIREBASE_AUTH_EMULATOR_HOST`. There firebase-admin
checks audience, issuer and subject but neither signature nor times, so a local
client can mint its own tokens (`python -m local token`).

Fail closed: in the cloud (`Settings.in_cloud`) emulator mode is never used,
whatever the settings or the process environment say: firebase-admin's switch
is removed from the environment and a token that is not RS256 with a key id is
refused before firebase-admin sees it. (The router also refuses to serve at all
with such a configuration; see docs/security.md.) Expiry and issue time are
checked here in both modes, so a token from the future is refused locally too.

Roles come from custom claims: `{"role": "admin"}` or `{"admin": true}` make an
admin; everyone else is a student who may only touch their own data.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, TypeGuard

import firebase_admin
import google.auth.credentials
from firebase_admin import auth as fb_auth
from firebase_admin import credentials as fb_credentials
from google.auth import jwt as gjwt

from shared.config import Settings
from shared.http.errors import ApiError, unauthorized
from shared.identity import Principal, role_from_claims

log = logging.getLogger(__name__)

_apps: dict[str, firebase_admin.App] = {}
_apps_lock = threading.Lock()


class _VerifyOnlyCredential(fb_credentials.Base):
    """We only verify ID tokens, which needs Google's public certificates and no
    credential. Without this, firebase-admin would look up Application Default
    Credentials at cold start (a metadata-server round trip in the cloud, an
    error on a laptop) for nothing."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()


def _firebase_app(project_id: str) -> firebase_admin.App:
    """One firebase-admin app per project id; creating one is cheap but not free."""
    with _apps_lock:
        app = _apps.get(project_id)
        if app is None:
            app = firebase_admin.initialize_app(
                credential=_VerifyOnlyCredential(),
                options={"projectId": project_id},
                name=f"cognitive-core-{project_id}",
            )
            _apps[project_id] = app
        return app


# A Firebase ID token is about 1 KB; far larger is not a token worth parsing.
MAX_TOKEN_CHARS = 8192
CLOCK_SKEW_S = 5


def _apply_emulator_env(settings: Settings) -> bool:
    """firebase-admin reads the emulator switch from the process environment at every
    verification: make it say exactly what the settings allow. Returns the mode."""
    if settings.unsigned_tokens_allowed:
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = settings.auth_emulator_host or ""
        return True
    os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    return False


def _require_signed_header(token: str) -> None:
    """Outside emulator mode only an RS256 token with a key id can be genuine. Checked
    here, before firebase-admin, so that no environment variable can make an unsigned
    token acceptable."""
    try:
        header = gjwt.decode_header(token)
    except Exception as exc:  # malformed base64 / JSON: the same 401 as any bad token
        raise unauthorized("The ID token is invalid.") from exc
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not header.get("kid"):
        log.info("rejected ID token", extra={"reason": "not an RS256 token with a key id"})
        raise unauthorized("The ID token is invalid.")


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_times(claims: dict[str, Any]) -> None:
    """Expired, or issued (or signed in) in the future beyond the clock skew: refused."""
    now = time.time()
    exp = claims.get("exp")
    if not _is_time(exp) or exp < now - CLOCK_SKEW_S:
        raise unauthorized("The ID token has expired; sign in again.")
    iat = claims.get("iat")
    for name, value in (("iat", iat), ("auth_time", claims.get("auth_time", iat))):
        if not _is_time(value) or value > now + CLOCK_SKEW_S:
            log.info("rejected ID token", extra={"reason": f"{name} missing, malformed or in the future"})
            raise unauthorized("The ID token is invalid.")


def verify_bearer(authorization: str | None, settings: Settings) -> Principal:
    """Turn an Authorization header into a Principal, or raise a 401."""
    if not authorization:
        raise unauthorized("Missing Authorization header (expected 'Bearer <Firebase ID token>').")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Authorization header must be 'Bearer <Firebase ID token>'.")

    if len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("The ID token is invalid.")

    if not _apply_emulator_env(settings):
        _require_signed_header(token)
    try:
        claims = fb_auth.verify_id_token(token, app=_firebase_app(settings.project_id), clock_skew_seconds=CLOCK_SKEW_S)
    except fb_auth.ExpiredIdTokenError as exc:
        raise unauthorized("The ID token has expired; sign in again.") from exc
    except (fb_auth.InvalidIdTokenError, ValueError) as exc:
        log.info("rejected ID token", extra={"reason": str(exc)[:300]})
        raise unauthorized("The ID token is invalid.") from exc
    except fb_auth.CertificateFetchError as exc:
        log.error("could not fetch token certificates", exc_info=True)
        raise ApiError(503, "auth_unavailable", "Token verification is unavailable.") from exc

    _check_times(claims)

    return Principal(
        uid=claims["uid"],
        role=role_from_claims(claims),
        email=claims.get("email"),
        claims=claims,
    )
