"""The one home of how this code base reaches a Vertex AI publisher model over HTTP: the
endpoint's URL and a bearer token that is valid now.

Used by the Gemini provider (`shared/llm/providers/vertex.py`) and the Vertex embedding
back end (`shared/embeddings/backends.py`); both send their JSON with httpx (no SDK:
`shared/llm/providers/rest.py` says why). Authentication is Application Default
Credentials through google-auth (the function's service account in the cloud), looked up
on first use and refreshed before they expire; the project is taken from them when none
is configured. Tests pass a static-token credential and point `base_url` at a loopback
stub, which is used verbatim in front of `v1beta1/projects/<p>/locations/<l>/...` (the
surface google-genai's Vertex mode calls).
"""

from __future__ import annotations

import threading
from typing import Any

#: what the credentials must allow (Vertex AI's prediction endpoints)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class NoProjectError(ValueError):
    """Neither the settings nor the credentials name a Google Cloud project."""


class VertexEndpoint:
    """Where `publishers/google/models/<model>:<method>` lives for a project and location,
    and the headers that authorise a call to it (thread-safe: a chat instance's turns share
    one credential)."""

    def __init__(
        self, project: str | None, location: str | None, *, base_url: str | None = None, credentials: Any = None
    ) -> None:
        self.project = project
        self.location = location or "us-central1"
        self.base_url = base_url.rstrip("/") if base_url else None
        self.credentials = credentials
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        """`authorization` (and a quota project where the credential names one), valid now."""
        with self._lock:
            if self.credentials is None:
                import google.auth

                self.credentials, adc_project = google.auth.default(scopes=SCOPES)
                self.project = self.project or adc_project
            if not self.credentials.valid:
                from google.auth.transport.requests import Request

                self.credentials.refresh(Request())
            headers: dict[str, str] = {}
            self.credentials.apply(headers)
            return headers

    def model_url(self, model: str, method: str) -> str:
        """e.g. `model_url("gemini-2.5-flash", "generateContent")`."""
        if self.project is None:
            raise NoProjectError("no Google Cloud project: set GCP_PROJECT or use credentials that name one")
        host = self.base_url or (
            "https://aiplatform.googleapis.com"
            if self.location == "global"
            else f"https://{self.location}-aiplatform.googleapis.com"
        )
        path = f"projects/{self.project}/locations/{self.location}/publishers/google/models/{model}:{method}"
        return f"{host}/v1beta1/{path}"
