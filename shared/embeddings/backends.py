"""Embedding back ends: the local INT8 MiniLM encoder, and Vertex AI text embeddings.

A back end turns a list of (already de-duplicated, cache-missed) texts into unit vectors
and names the embedding space it produced them in (`model_name`). Vectors from two
different names are not comparable, which is why the name is stored beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class EmbeddingBackend(Protocol):
    #: lowercase cache keys are only safe when the model itself is uncased
    uncased: bool

    @property
    def model_name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 L2-normalised vectors."""
        ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class RegistryEncoderBackend:
    """The "encoder" model of the version in service (INT8 ONNX MiniLM, 384-d).

    It asks the registry on every call, so a newly published version is picked up without
    a restart. The model name carries the encoder file's sha256 prefix: rebuilding the
    same weights gives the same bytes and the same name, so stored vectors stay valid
    across versions whose encoder did not change.
    """

    uncased = True

    def __init__(self, registry: Any = None) -> None:
        self._registry = registry

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from shared.models.registry import get_registry

            self._registry = get_registry()
        return self._registry

    @property
    def model_name(self) -> str:
        loaded = self.registry.loaded
        if loaded is None:
            self.registry.get("encoder")  # raises ModelUnavailableError with the reason
        entry = loaded.manifest["models"]["encoder"]
        digest = loaded.manifest["files"][entry["file"]]["sha256"][:12]
        base = getattr(loaded.models.get("encoder"), "base_model", "all-MiniLM-L6-v2")
        return f"{base}-int8-onnx:{digest}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.registry.get("encoder").embed(list(texts)), dtype=np.float32)


class VertexBackend:
    """Vertex AI text embeddings: `:predict` of a publisher embedding model over HTTP
    (`shared/vertex.py` says where and with which credentials; no SDK is imported).

    Selected by EMBEDDING_BACKEND=vertex. Vectors are re-normalised so cosine and dot
    product agree with the local encoder's convention. A failed call raises (httpx's
    errors, or RuntimeError for an answer of the wrong size): the embedding service's
    callers treat the back end as unavailable.
    """

    uncased = False
    #: Vertex text-embedding models accept at most 250 inputs per request.
    MAX_BATCH = 100
    TIMEOUT_S = 30.0

    def __init__(
        self,
        model: str = "text-embedding-005",
        *,
        project: str | None = None,
        location: str | None = None,
        dimension: int | None = None,
        task_type: str = "RETRIEVAL_QUERY",
        base_url: str | None = None,
        credentials: Any = None,
    ) -> None:
        from shared.vertex import VertexEndpoint

        self.model = model
        self.dimension = dimension
        self.task_type = task_type
        self.endpoint = VertexEndpoint(project, location, base_url=base_url, credentials=credentials)
        self._client: Any = None

    @property
    def model_name(self) -> str:
        suffix = f"@{self.dimension}" if self.dimension else ""
        return f"vertex:{self.model}{suffix}"

    def _predict(self, texts: list[str]) -> list[list[float]]:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.TIMEOUT_S)
        body: dict[str, Any] = {"instances": [{"content": t, "task_type": self.task_type} for t in texts]}
        if self.dimension:
            body["parameters"] = {"outputDimensionality": self.dimension}
        headers = self.endpoint.headers()  # first: looking up credentials may name the project
        response = self._client.post(self.endpoint.model_url(self.model, "predict"), json=body, headers=headers)
        response.raise_for_status()
        return [p["embeddings"]["values"] for p in response.json()["predictions"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.MAX_BATCH):
            chunk = list(texts[start : start + self.MAX_BATCH])
            vectors = self._predict(chunk)
            if len(vectors) != len(chunk):
                raise RuntimeError(f"{self.model_name}: {len(vectors)} vectors for {len(chunk)} texts")
            rows.extend(vectors)
        if not rows:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        return l2_normalize(np.array(rows, dtype=np.float32))
