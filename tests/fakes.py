"""Stand-ins shared by the test folders (one home, not a copy per folder).

`hash_vector` makes a deterministic unit vector from a text: where the encoder's quality
is not the point (loading, caching, retrieval plumbing), tests embed with it instead of
the model, and equal texts still get equal vectors. `self_signed_key`, `forged_key`,
`sign_id_token` and `cert_server` let the auth tests and the drills verify real RS256
Firebase ID tokens against a loopback certificate endpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np

from local.loopback import serve_http

DIM = 384


def hash_vector(text: str, dim: int = DIM) -> np.ndarray:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


class CountingEmbedder:
    """An `embed(texts)` callable of hash vectors that records every text it is asked to
    embed (a loader's job is to ask for as little as possible) and can be told to fail on
    a given call (to simulate a crash mid-migration)."""

    model_name = "test-hash-embedder"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.texts: list[str] = []
        self.fail_on_call = fail_on_call

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise RuntimeError("simulated crash")
        self.texts.extend(texts)
        return np.stack([hash_vector(t) for t in texts])


class HashEncoder:
    """An embedding service stand-in (`embed_one`) of hash vectors."""

    model_name = "hash-encoder"

    def embed_one(self, text: str) -> np.ndarray:
        return hash_vector(text)


def self_signed_key(common_name: str) -> tuple[bytes, str]:
    """(PEM private key, PEM certificate): an RS256 signer and what a loopback stand-in of
    Google's securetoken certificate endpoint serves for it (real signature checks)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def forged_key() -> bytes:
    """A PEM RSA key nobody published a certificate for: a token it signs, under a known
    kid, carries a valid-looking but wrong signature."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def sign_id_token(private_key: bytes, *, kid: str, uid: str, project: str, exp_in: int = 3600, **claims: Any) -> str:
    """An RS256 Firebase ID token as securetoken.google.com issues them; `claims`
    override or add to the standard ones (iss, aud, iat, ... for the negative cases)."""
    from google.auth import crypt
    from google.auth import jwt as gjwt

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
    return gjwt.encode(crypt.RSASigner.from_string(private_key, key_id=kid), payload).decode()


@dataclass
class CertServer:
    """A running loopback stand-in of Google's securetoken certificate endpoint."""

    url: str
    hits: list[float] = field(default_factory=list)
    """When each request came (the verifier must cache: Cache-Control max-age=3600)."""


@contextmanager
def cert_server(certificates: dict[str, str]) -> Iterator[CertServer]:
    """Serve {kid: PEM certificate} on loopback the way Google's endpoint does, so the
    real firebase-admin / google-auth code checks real signatures with no network."""
    body = json.dumps(certificates).encode()
    served = CertServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.hits.append(time.time())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serve_http(Handler) as base:
        served.url = f"{base}/certs"
        yield served
