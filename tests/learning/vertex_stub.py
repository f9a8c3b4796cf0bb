"""A loopback stub of the Vertex AI JobService REST API (CustomJobs), for the real client.

`google-cloud-aiplatform`'s JobServiceClient (REST transport) is pointed at it with the
`api_endpoint` client option (http://127.0.0.1:<port>): it sends the real URLs and JSON
bodies and parses the stub's answers as real CustomJob resources. The stub keeps the
jobs it was given; a test moves a job's state (`stub.set_state(...)`) as Vertex AI would,
or queues an error for the next create (`stub.fail_next(...)`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from local.loopback import serve_http

JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/customJobs$")
JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/customJobs/[^/?]+)$")


@dataclass
class VertexStub:
    url: str = ""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, code: int, status: str) -> None:
        self.errors.append((code, status))

    def set_state(self, name: str, state: str, error: str | None = None) -> None:
        with self.lock:
            self.jobs[name]["state"] = state
            if error:
                self.jobs[name]["error"] = {"code": 3, "message": error}

    def created(self) -> list[dict[str, Any]]:
        return [body for method, _, _, body in self.requests if method == "POST"]


def _handler(stub: VertexStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, status: str, message: str) -> None:
            self._reply(code, {"error": {"code": code, "message": message, "status": status}})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            path = self.path.split("?")[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            stub.requests.append(("POST", path, headers, body))
            match = JOBS.match(path)
            if not match:
                return self._error(404, "NOT_FOUND", f"stub: no route {path}")
            if stub.errors:
                code, status = stub.errors.pop(0)
                return self._error(code, status, f"stub: {status}")
            with stub.lock:
                name = f"{match.group(1)}/customJobs/{1000 + len(stub.jobs)}"
                job = dict(body or {}) | {
                    "name": name,
                    "state": "JOB_STATE_PENDING",
                    "createTime": "2026-12-01T23:00:00Z",
                }
                stub.jobs[name] = job
            self._reply(200, job)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            stub.requests.append(("GET", path, {k.lower(): v for k, v in self.headers.items()}, None))
            match = JOB.match(path)
            with stub.lock:
                job = stub.jobs.get(match.group(1)) if match else None
            if job is None:
                return self._error(404, "NOT_FOUND", f"stub: no job {path}")
            self._reply(200, job)

    return Handler


@contextmanager
def vertex_stub() -> Iterator[VertexStub]:
    """A stub on 127.0.0.1 (random port), stopped on exit."""
    stub = VertexStub()
    with serve_http(_handler(stub)) as url:
        stub.url = url
        yield stub
