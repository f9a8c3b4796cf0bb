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
    """Vertex AI text embeddings through google-genai (imported only when selected).

    Selected by EMBEDDING_BACKEND=vertex. Vectors are re-normalised so cosine and dot
    product agree with the local encoder's convention.
    """

    uncased = False
    #: Vertex text-embedding models accept at most 250 inputs per request.
    MAX_BATCH = 100

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
        client: Any = None,
    ) -> None:
        self.model = model
        self.project = project
        self.location = location
        self.dimension = dimension
        self.task_type = task_type
        self.base_url = base_url  # tests point the SDK at a loopback stub
        self.credentials = credentials
        self._client = client

    @property
    def model_name(self) -> str:
        suffix = f"@{self.dimension}" if self.dimension else ""
        return f"vertex:{self.model}{suffix}"

    @property
    def client(self) -> Any:
        if self._client is None:
            from shared.vertex import vertex_client

            self._client = vertex_client(
                self.project, self.location, base_url=self.base_url, credentials=self.credentials
            )
        return self._client

    def _config(self) -> Any:
        options: dict[str, Any] = {"task_type": self.task_type}
        if self.dimension:
            options["output_dimensionality"] = self.dimension
        try:
            from google.genai import types
        except ImportError:  # a test client without the SDK installed
            return options
        return types.EmbedContentConfig(**options)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.MAX_BATCH):
            chunk = list(texts[start : start + self.MAX_BATCH])
            response = self.client.models.embed_content(model=self.model, contents=chunk, config=self._config())
            if len(response.embeddings) != len(chunk):
                raise RuntimeError(f"{self.model_name}: {len(response.embeddings)} vectors for {len(chunk)} texts")
            rows.extend(list(e.values) for e in response.embeddings)
        if not rows:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        return l2_normalize(np.array(rows, dtype=np.float32))
