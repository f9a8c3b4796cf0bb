"""One way to open a Redis client, for everything that shares the deployment's Redis
(the embedding cache and the per-user rate limits): locally a plain redis:// URL, in the
cloud Memorystore's rediss:// with the AUTH string in the URL and the instance CA pinned.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[tuple[str, str | None, float], Any] = {}
_clients_lock = threading.Lock()


def shared_client(url: str, *, ca_cert: str | None = None, timeout_s: float = 0.1) -> Any:
    """The process's one client for this Redis: the embedding cache and the rate limiter
    draw on one connection pool instead of opening one each (redis-py clients are
    thread-safe and reconnect after a failure)."""
    key = (url, ca_cert, timeout_s)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = connect(url, ca_cert=ca_cert, timeout_s=timeout_s)
        return _clients[key]


def connect(url: str, *, ca_cert: str | None = None, timeout_s: float = 0.1) -> Any:
    """A `redis.Redis` over `url` (redis://, or rediss:// for TLS; a password in the URL is
    sent as AUTH), with short timeouts: callers degrade rather than wait on Redis. With
    `ca_cert` (PEM) the server must chain to that CA and only to it.
    """
    import redis  # imported only where a Redis is configured

    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if ca_cert:
        if not url.startswith("rediss://"):
            raise ValueError("a CA certificate needs a rediss:// (TLS) URL")
        options.update(connection_class=pinned_ca_connection(ca_cert))
    return redis.Redis.from_url(url, **options)


def pinned_ca_connection(ca_cert: str) -> type:
    """A redis-py TLS connection class that trusts `ca_cert` alone, host name unchecked.

    Why not redis-py's own options: its TLS context always loads the system trust store
    as well, and Memorystore's server certificates carry the instance's IP only as the
    subject CN, which Python never matches (IP addresses must be subjectAltNames), so
    the host name check has to go. Without the system store that is safe: Memorystore
    gives every instance its own CA, so a chain to that CA names the instance.
    """
    import ssl

    import redis

    context = ssl.create_default_context(cadata=ca_cert)  # given cadata, no system store
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED

    class PinnedCAConnection(redis.SSLConnection):
        def _wrap_socket_with_ssl(self, sock: Any) -> Any:
            return context.wrap_socket(sock, server_hostname=self.host)

    return PinnedCAConnection
