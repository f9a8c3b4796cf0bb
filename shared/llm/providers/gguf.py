"""A GGUF model (Llama, Mistral, Qwen, ...) run in-process through llama-cpp-python.

An optional extra, not part of any function's serving requirements: it compiles
llama.cpp from source (see docs/llm.md, "Local models", for the portable build). The
package is imported on first use only, so the provider module itself imports nothing
heavy; a process without the extra simply cannot enable `gguf` (the router leaves it
out with the reason logged).

One `Llama` object serves one call at a time (it is not thread-safe): calls queue on a
lock for at most their timeout. `generate` drains `stream`, so both are bounded by the
timeout between tokens. Usage comes from the completion's `usage` when llama.cpp
gives it (non-streaming); a stream has none, so its input is counted with the model's
own tokenizer and its output as the number of streamed tokens. Calls are free.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import StreamState, stream_text
from shared.llm.types import Prompt, ProviderResult


class GGUFProvider:
    name = "gguf"
    free = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_output_tokens: int = 1024,
        llama: Any = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_output_tokens = max_output_tokens
        self._llama = llama
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """What the generation log records: the file's name without `.gguf`."""
        return self.model_path.stem

    @property
    def llama(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # the extra is not installed here
                raise ProviderError(self.name, f"llama-cpp-python is not installed ({exc})", transient=False) from exc
            if not self.model_path.is_file():
                raise ProviderError(self.name, f"no GGUF file at {self.model_path}", transient=False, status=404)
            try:
                self._llama = Llama(
                    model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ProviderError(
                    self.name, f"could not load {self.model_path.name}: {str(exc)[:200]}", transient=False, status=404
                ) from exc
        return self._llama

    def describe(self) -> dict[str, Any]:
        return {"model_file": self.model_path.name, "loaded": self._llama is not None, "local": True, "cost": "free"}

    def _kwargs(self, prompt: Prompt) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": m.role, "content": m.content} for m in prompt.messages]
        kwargs: dict[str, Any] = {
            "messages": messages,
            "temperature": prompt.temperature,
            "max_tokens": prompt.max_output_tokens or self.max_output_tokens,
        }
        if prompt.json_schema is not None:
            # llama.cpp turns the schema into a grammar: the answer is JSON of this shape
            kwargs["response_format"] = {"type": "json_object", "schema": prompt.json_schema}
        return kwargs

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        result: ProviderResult | None = None
        for item in self.stream(model, prompt, timeout_s):
            if isinstance(item, ProviderResult):
                result = item
        if result is None:  # stream_text always ends with a result; this is a guard, not a path
            raise ProviderError(self.name, "stream ended without a result", transient=True)
        return result

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        def deltas(state: StreamState) -> Iterator[str]:
            if not self._lock.acquire(timeout=timeout_s):
                raise ProviderError(self.name, f"busy for {timeout_s:g}s (one call at a time)", transient=True)
            try:
                llama = self.llama
                state.model = self.model_name
                state.tokens_in = _count_tokens(llama, prompt)
                state.tokens_out = 0
                for chunk in llama.create_chat_completion(**self._kwargs(prompt), stream=True):
                    choice = chunk["choices"][0]
                    state.finish_reason = choice.get("finish_reason") or state.finish_reason
                    text = choice.get("delta", {}).get("content") or ""
                    if text:
                        state.tokens_out += 1  # llama-cpp-python streams one token per chunk
                    yield text
            finally:
                self._lock.release()

        return stream_text(self.name, model, timeout_s, deltas, self.translate)

    def translate(self, exc: BaseException) -> ProviderError:
        """llama.cpp fails the same way every time for the same input (context overflow,
        a bad grammar): permanent, so the router moves on instead of retrying."""
        return ProviderError(self.name, f"{type(exc).__name__}: {str(exc)[:200]}", transient=False)


def _count_tokens(llama: Any, prompt: Prompt) -> int | None:
    """The prompt's tokens by the model's own tokenizer (the chat template adds a few)."""
    try:
        return len(llama.tokenize(prompt.render().encode("utf-8"), add_bos=True))
    except Exception:  # noqa: BLE001 - a count is nice to have, never a reason to fail
        return None
