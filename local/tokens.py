"""Mint Firebase ID tokens the way the Firebase Auth emulator does (unsigned).

They are accepted only while the functions run in Auth emulator mode, the explicit
local opt-in (FIREBASE_AUTH_EMULATOR_HOST set, which `python -m local` does), and
never in the cloud: a function verifying real tokens rejects them because they carry
no signature and no key id (docs/security.md).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint_emulator_token(
    uid: str,
    project_id: str,
    *,
    admin: bool = False,
    email: str | None = None,
    expires_in: int = 3600,
    issued_at: float | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(issued_at if issued_at is not None else time.time())
    payload: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project_id}",
        "aud": project_id,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + expires_in,
        "email": email or f"{uid}@example.com",
        "email_verified": True,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    if admin:
        payload["role"] = "admin"
    if extra_claims:
        payload.update(extra_claims)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
