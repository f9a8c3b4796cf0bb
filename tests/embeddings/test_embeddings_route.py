"""POST /api/chat/embeddings: vectors for other back ends, admins and service accounts only,
batched and size-limited, with the encoder version the vectors belong to."""

from __future__ import annotations

import numpy as np
import pytest

from shared.embeddings.service import MAX_CHARS, MAX_TEXTS, get_embedding_service

URL = "/api/chat/embeddings"


@pytest.fixture()
def service_headers(bearer):
    return bearer("svc-indexer", extra_claims={"role": "service"})


def test_a_service_account_gets_unit_vectors_and_the_encoder_version(client, service_headers, db):
    texts = ["what is a for loop?", "Newton's second law", "what is a for loop?"]
    response = client.post(URL, json={"texts": texts}, headers=service_headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == get_embedding_service().model_name and body["count"] == 3
    vectors = np.array(body["vectors"], dtype=np.float32)
    assert vectors.shape == (3, body["dim"]) and body["dim"] == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    direct = get_embedding_service().embed(texts[:1])[0]
    assert np.allclose(vectors[0], direct, atol=1e-6)  # the same space retrieval uses


def test_admins_may_embed_students_and_teachers_may_not(client, bearer, db):
    assert client.post(URL, json={"texts": ["loops"]}, headers=bearer("root", admin=True)).status_code == 200
    assert client.post(URL, json={"texts": ["loops"]}, headers=bearer("alice")).status_code == 403
    teacher = bearer("tess", extra_claims={"role": "teacher"})
    assert client.post(URL, json={"texts": ["loops"]}, headers=teacher).status_code == 403
    assert client.post(URL, json={"texts": ["loops"]}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"texts": []},
        {"texts": ["x"] * (MAX_TEXTS + 1)},
        {"texts": ["x" * (MAX_CHARS + 1)]},
        {"texts": [""]},
        {"texts": "one text"},
        {"texts": [1, 2]},
        {"text": ["x"]},
    ],
)
def test_oversized_or_malformed_batches_are_refused(client, service_headers, db, body):
    response = client.post(URL, json=body, headers=service_headers)
    assert response.status_code in (413, 422), (response.status_code, response.get_json())


def test_a_broken_encoder_is_a_503_not_a_crash(client, service_headers, db, monkeypatch):
    service = get_embedding_service()

    def broken(texts):
        raise RuntimeError("onnxruntime session failed")

    monkeypatch.setattr(service, "embed", broken)
    response = client.post(URL, json={"texts": ["loops"]}, headers=service_headers)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "encoder_unavailable"
