"""The Vertex AI embedding back end against a loopback stub that speaks the Vertex
`:predict` REST shape: the URL, headers and body really sent, batching, normalisation,
an answer of the wrong size, and an error status. No network, no ADC lookup (a
static-token credential)."""

import json
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import httpx
import numpy as np
import pytest
from google.oauth2.credentials import Credentials

from local.loopback import serve_http
from shared.embeddings.backends import VertexBackend
from shared.embeddings.service import EmbeddingService


class _PredictStub(BaseHTTPRequestHandler):
    """Answers `...:predict` like Vertex text-embedding models; records each request.
    `drop` leaves that many vectors out of each answer; `status` answers with an error."""

    requests: ClassVar[list[tuple[str, dict, dict]]] = []
    drop: ClassVar[int] = 0
    status: ClassVar[int] = 200

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        predictions = [
            {
                "embeddings": {
                    "values": [3.0, 4.0, float(len(i["content"])), 0.0],
                    "statistics": {"token_count": 2, "truncated": False},
                }
            }
            for i in body["instances"]
        ]
        answer = {"predictions": predictions[: len(predictions) - type(self).drop]}
        if type(self).status != 200:
            answer = {"error": {"code": type(self).status, "message": "stub", "status": "PERMISSION_DENIED"}}
        data = json.dumps(answer).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def vertex_stub():
    _PredictStub.requests, _PredictStub.drop, _PredictStub.status = [], 0, 200
    with serve_http(_PredictStub) as url:
        yield url


def backend(url: str, dimension: int | None = 4) -> VertexBackend:
    return VertexBackend(
        "text-embedding-005",
        project="demo-project",
        location="us-central1",
        dimension=dimension,
        base_url=url,
        credentials=Credentials(token="stub-token"),
    )


def test_sends_the_vertex_predict_request_and_normalises(vertex_stub):
    vectors = backend(vertex_stub).embed(["hello", "how do loops work"])
    path, headers, body = _PredictStub.requests[0]
    assert (
        path
        == "/v1beta1/projects/demo-project/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert headers["authorization"] == "Bearer stub-token"
    assert [i["content"] for i in body["instances"]] == ["hello", "how do loops work"]
    assert body["instances"][0]["task_type"] == "RETRIEVAL_QUERY"
    assert body["parameters"]["outputDimensionality"] == 4
    expected = np.array([[3, 4, 5, 0], [3, 4, 17, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)


def test_requests_are_batched_and_without_a_dimension_no_parameter_is_sent(vertex_stub):
    texts = [f"t{i}" for i in range(VertexBackend.MAX_BATCH + 5)]
    vectors = backend(vertex_stub, dimension=None).embed(texts)
    assert vectors.shape == (len(texts), 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert [len(r[2]["instances"]) for r in _PredictStub.requests] == [VertexBackend.MAX_BATCH, 5]
    assert "parameters" not in _PredictStub.requests[0][2]
    assert backend(vertex_stub).model_name == "vertex:text-embedding-005@4"


def test_a_short_answer_is_an_error_not_misaligned_vectors(vertex_stub):
    _PredictStub.drop = 1
    with pytest.raises(RuntimeError, match="1 vectors for 2 texts"):
        backend(vertex_stub).embed(["a", "b"])


def test_an_error_status_raises(vertex_stub):
    _PredictStub.status = 403
    with pytest.raises(httpx.HTTPStatusError, match="403"):
        backend(vertex_stub).embed(["a"])


def test_service_over_vertex_keeps_case_in_cache_keys(vertex_stub):
    service = EmbeddingService(backend(vertex_stub, dimension=None))
    service.embed(["Python", "python", "Python "])
    assert [i["content"] for i in _PredictStub.requests[0][2]["instances"]] == ["Python", "python"]
    assert service.model_name == "vertex:text-embedding-005"
