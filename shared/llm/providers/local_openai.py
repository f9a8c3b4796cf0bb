"""A local model behind an OpenAI-compatible endpoint: llama.cpp's `llama-server`, Ollama,
vLLM, LM Studio (all serve `POST /v1/chat/completions`, streaming included).

It is the OpenAI provider pointed at `LOCAL_LLM_BASE_URL` with the model the server
loaded (`LOCAL_LLM_MODEL`), through the same official `openai` client, with two
differences: the answer cap is sent as `max_tokens` (what every one of those servers
reads; `max_completion_tokens` is OpenAI's newer name, which some ignore), and the
calls cost nothing (`free`: the router books them at 0 USD whatever the model's name).
Most local servers need no key; the client still wants one, so a placeholder is sent.
"""

from __future__ import annotations

from typing import Any

from shared.llm.providers.openai_api import OpenAIProvider

#: sent when the server needs no key (the openai client refuses an empty one)
NO_KEY = "no-key"


class LocalOpenAIProvider(OpenAIProvider):
    name = "local"
    free = True
    token_cap_field = "max_tokens"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        client: Any = None,
        max_output_tokens: int = 1024,
    ) -> None:
        super().__init__(api_key or NO_KEY, base_url=base_url, client=client, max_output_tokens=max_output_tokens)

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": True, "local": True, "cost": "free"}
