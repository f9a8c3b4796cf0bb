"""Sentence embeddings for RAG and caching: one service, two back ends.

`get_embedding_service()` returns the process-wide `EmbeddingService`: an LRU cache keyed
by normalised text (with hit/miss counters), de-duplication within a batch, and batching,
over either the local INT8 MiniLM encoder (default) or Vertex AI text embeddings. Every
vector comes with the `model_name` that produced it; store that name beside the vector.
"""

from shared.embeddings.cache import EmbeddingCache, normalize_text
from shared.embeddings.service import EmbeddingService, get_embedding_service

__all__ = ["EmbeddingCache", "EmbeddingService", "get_embedding_service", "normalize_text"]
