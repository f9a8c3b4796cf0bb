"""The Vertex AI back end against a stand-in client of google-genai's shape.

No network. First against an injected stand-in of `client.models.embed_content`; then
the real google-genai SDK pointed (http_options.base_url) at a loopback stub that speaks
the Vertex `:predict` REST shape, so the URL and body the SDK really sends are checked.
"""

import json
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from local.loopback import serve_http
from shared.embeddings.backends import VertexBackend
from shared.embeddings.service import EmbeddingService


class FakeModels:
    def __init__(self, dim: int = 4, drop: int = 0) -> None:
        self.dim, self.drop, self.calls = dim, drop, []

    def embed_content(self, *, model, contents, config):
        self.calls.append((model, list(contents), config))
        rows = [[float(len(t)), 1.0, 0.0, 2.0][: self.dim] for t in contents]
        rows = rows[: len(rows) - self.drop]
        return SimpleNamespace(embeddings=[SimpleNamespace(values=r) for r in rows])


def test_vectors_are_normalised_and_requests_batched():
    models = FakeModels()
    backend = VertexBackend("text-embedding-005", dimension=4, client=SimpleNamespace(models=models))
    texts = [f"t{i}" for i in range(VertexBackend.MAX_BATCH + 5)]
    vectors = backend.embed(texts)
    assert vectors.shape == (len(texts), 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert [len(c[1]) for c in models.calls] == [VertexBackend.MAX_BATCH, 5]
    assert models.calls[0][0] == "text-embedding-005"
    assert backend.model_name == "vertex:text-embedding-005@4"


def test_short_response_is_an_error_not_misaligned_vectors():
    backend = VertexBackend(client=SimpleNamespace(models=FakeModels(drop=1)))
    with pytest.raises(RuntimeError, match="vectors for"):
        backend.embed(["a", "b"])


def test_service_over_vertex_keeps_case_in_cache_keys():
    models = FakeModels()
    service = EmbeddingService(VertexBackend(client=SimpleNamespace(models=models)))
    service.embed(["Python", "python", "Python "])
    assert models.calls[0][1] == ["Python", "python"]
    assert service.model_name == "vertex:text-embedding-005"


# --- the real SDK against a loopback stub of the Vertex REST API ------------------------


class _PredictStub(BaseHTTPRequestHandler):
    """Answers `...:predict` like Vertex text-embedding models; records each request."""

    requests: ClassVar[list[tuple[str, dict]]] = []

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        predictions = [
            {
                "embeddings": {
                    "values": [3.0, 4.0, float(len(i["content"])), 0.0],
                    "statistics": {"token_count": 2, "truncated": False},
                }
            }
            for i in body["instances"]
        ]
        data = json.dumps({"predictions": predictions}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def vertex_stub():
    _PredictStub.requests = []
    with serve_http(_PredictStub) as url:
        yield url


def test_google_genai_sends_the_vertex_predict_request(vertex_stub):
    pytest.importorskip("google.genai", reason="google-genai is not installed")
    from google.oauth2.credentials import Credentials

    backend = VertexBackend(
        "text-embedding-005",
        project="demo-project",
        location="us-central1",
        dimension=4,
        base_url=vertex_stub,
        credentials=Credentials(token="stub-token"),
    )
    vectors = backend.embed(["hello", "how do loops work"])
    path, body = _PredictStub.requests[0]
    assert path.endswith(
        "/projects/demo-project/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert [i["content"] for i in body["instances"]] == ["hello", "how do loops work"]
    assert body["instances"][0]["task_type"] == "RETRIEVAL_QUERY"
    assert body["parameters"]["outputDimensionality"] == 4
    expected = np.array([[3, 4, 5, 0], [3, 4, 17, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
