"""A local model behind an OpenAI-compatible endpoint: llama.cpp's `llama-server`, Ollama,
vLLM, LM Studio (all serve `POST /v1/chat/completions`, streaming included).

It is the OpenAI provider pointed at `LOCAL_LLM_BASE_URL` with the model the server
loaded (`LOCAL_LLM_MODEL`), with three differences: the answer cap is sent as
`max_tokens` (what every one of those servers reads; `max_completion_tokens` is OpenAI's
newer name, which some ignore), the calls cost nothing (`free`: the router books them at
0 USD whatever the model's name), and a server that needs no key is sent none.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.llm.providers.openai_api import OpenAIProvider


class LocalOpenAIProvider(OpenAIProvider):
    name = "local"
    free = True
    token_cap_field = "max_tokens"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        max_output_tokens: int = 1024,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url=base_url, max_output_tokens=max_output_tokens, transport=transport)

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": True, "local": True, "cost": "free"}
