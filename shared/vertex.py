"""The one way this code base builds a Vertex AI client (google-genai, `vertexai=True`).

Used by the Gemini provider (`shared/llm/providers/vertex.py`) and the Vertex
embedding back end (`shared/embeddings/backends.py`). Authentication is Application
Default Credentials unless a credential is passed (tests pass a static token);
`base_url` points the SDK at a stub or a proxy, which it uses verbatim in front of
`v1beta1/projects/<p>/locations/<l>/...`. The SDK is imported here, on first use only.
"""

from __future__ import annotations

from typing import Any


def vertex_client(
    project: str | None, location: str | None, *, base_url: str | None = None, credentials: Any = None
) -> Any:
    """A `google.genai.Client` for Vertex AI; its own retries are off (the SDK's default)."""
    from google import genai
    from google.genai import types

    http_options = types.HttpOptions(base_url=base_url) if base_url else None
    return genai.Client(
        vertexai=True, project=project, location=location, credentials=credentials, http_options=http_options
    )
