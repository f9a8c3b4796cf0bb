"""The shared cache as the cloud configures it: `rediss://` with an AUTH password and a
pinned server CA (Memorystore with AUTH and in-transit encryption), against a real
`redis-server` listening for TLS only on loopback.

The server certificate carries its IP only as the subject CN, as Memorystore's do, so
these tests also show the pinned CA is what authenticates the server, not a host name.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from local.loopback import free_port, start_redis
from shared.config import Settings
from shared.embeddings.service import EmbeddingService
from shared.embeddings.shared_cache import RedisEmbeddingCache

AUTH = "s3cret-auth-string"


def _ca_and_server(workdir: Path, cn: str = "127.0.0.1") -> str:
    """Write ca.pem, server.pem and server.key (a CA and a server certificate it signs,
    CN = the IP, no subjectAltName); return the CA's PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test instance CA"))
        .issuer_name(name("test instance CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    (workdir / "ca.pem").write_text(ca_pem)
    (workdir / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (workdir / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_pem


@pytest.fixture()
def tls_redis() -> Iterator[dict]:
    """redis-server with TLS only (port 0 closes the plain port) and requirepass."""
    workdir = Path(tempfile.mkdtemp(prefix="cc-redis-tls-"))
    ca_pem = _ca_and_server(workdir)
    port = free_port()
    tls = {
        "--port": "0",  # no plain port: TLS only, as Memorystore with in-transit encryption
        "--tls-port": str(port),
        "--tls-cert-file": str(workdir / "server.pem"),
        "--tls-key-file": str(workdir / "server.key"),
        "--tls-ca-cert-file": str(workdir / "ca.pem"),
        "--tls-auth-clients": "no",
        "--requirepass": AUTH,
    }
    proc, _ = start_redis(str(workdir), *(part for pair in tls.items() for part in pair), port=port)
    try:
        yield {"port": port, "ca": ca_pem, "url": f"rediss://:{AUTH}@127.0.0.1:{port}/0"}
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


class Backend:
    uncased = True
    model_name = "fake-encoder@v1"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return np.stack([np.full(4, 0.5, dtype=np.float32) for _ in texts])


def _service(url: str, ca: str | None) -> tuple[EmbeddingService, Backend]:
    backend = Backend()
    return EmbeddingService(backend, shared_cache=RedisEmbeddingCache.from_url(url, ca_cert=ca, timeout_s=2)), backend


def test_tls_with_auth_and_the_pinned_ca_shares_vectors(tls_redis):
    first, _ = _service(tls_redis["url"], tls_redis["ca"])
    second, backend = _service(tls_redis["url"], tls_redis["ca"])
    first.embed(["what is a loop?"])
    second.embed(["what is a loop?"])
    assert backend.texts == []  # answered from Redis, over TLS, after AUTH
    assert second.stats()["shared"] == {**second.stats()["shared"], "hits": 1, "errors": 0}


def test_a_server_signed_by_another_ca_is_refused_and_the_answer_degrades(tls_redis, tmp_path):
    other_ca = _ca_and_server(tmp_path)  # a CA that did not sign the server's certificate
    service, backend = _service(tls_redis["url"], other_ca)
    assert service.embed(["hello"]).shape == (1, 4) and backend.texts == ["hello"]
    assert service.stats()["shared"]["errors"] == 1


def test_a_wrong_auth_string_degrades_too(tls_redis):
    service, backend = _service(tls_redis["url"].replace(AUTH, "wrong"), tls_redis["ca"])
    assert service.embed(["hello"]).shape == (1, 4) and backend.texts == ["hello"]
    assert service.stats()["shared"]["errors"] == 1


def test_plain_redis_cannot_talk_to_the_tls_port(tls_redis):
    service, _ = _service(tls_redis["url"].replace("rediss://", "redis://"), None)
    service.embed(["hello"])
    assert service.stats()["shared"]["errors"] == 1


def test_a_ca_needs_a_tls_url():
    with pytest.raises(ValueError, match="rediss://"):
        RedisEmbeddingCache.from_url("redis://127.0.0.1:6379/0", ca_cert="-----BEGIN CERTIFICATE-----")


def test_settings_keep_the_url_secret_and_check_it(monkeypatch):
    url = f"rediss://:{AUTH}@10.0.0.3:6378/0"
    settings = Settings(REDIS_URL=url, REDIS_CA_CERT="pem")
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == url
    assert AUTH not in repr(settings) and AUTH not in str(settings.model_dump())
    with pytest.raises(ValidationError, match="REDIS_CA_CERT is set but REDIS_URL is not rediss://") as err:
        Settings(REDIS_URL=f"redis://:{AUTH}@10.0.0.3:6379/0", REDIS_CA_CERT="pem")
    assert AUTH not in str(err.value)
    with pytest.raises(ValidationError, match="REDIS_URL must be redis://") as err:
        Settings(REDIS_URL=f"http://:{AUTH}@10.0.0.3/")
    assert AUTH not in str(err.value)
    assert Settings(REDIS_URL="").redis_url is None


def test_the_service_reads_the_cloud_settings_and_reaches_the_tls_server(tls_redis, monkeypatch):
    """REDIS_URL (secret) and REDIS_CA_CERT as Terraform sets them reach the process-wide
    service's cache, which then really talks to the TLS server with AUTH."""
    from shared.config import reset_settings_cache
    from shared.embeddings.service import get_embedding_service, reset_embedding_service

    monkeypatch.setenv("REDIS_URL", tls_redis["url"])
    monkeypatch.setenv("REDIS_CA_CERT", tls_redis["ca"])
    reset_settings_cache()
    reset_embedding_service()
    try:
        shared = get_embedding_service().shared_cache
        assert shared is not None
        shared.client.connection_pool.connection_kwargs["socket_timeout"] = 2  # a loaded test machine
        vector = np.arange(4, dtype=np.float32)
        shared.put_many("m@v1", {"k": vector})
        np.testing.assert_array_equal(shared.get_many("m@v1", ["k"])["k"], vector)
        assert shared.errors == 0
    finally:
        monkeypatch.delenv("REDIS_URL")
        monkeypatch.delenv("REDIS_CA_CERT")
        reset_settings_cache()
        reset_embedding_service()
