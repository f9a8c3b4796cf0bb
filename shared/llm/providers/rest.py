"""The hosted providers' one transport: a JSON request over HTTP(S) with httpx, its answer
read whole or as server-sent events, and one translation of what can go wrong into a
ProviderError.

Why not the vendors' SDKs: each provider makes one call (OpenAI-compatible chat
completions, Anthropic messages, Vertex generateContent), whose request and answer are a
few documented JSON fields, while importing an SDK cost chat's cold start 0.6-0.75 s of
CPU holding the GIL (`openai.types`, `google.genai.types`: hundreds of pydantic models,
docs/chat.md). httpx is what those SDKs send with, and every function that verifies a
Firebase token imports it already (firebase_admin does), so this costs no import at all.
A provider here is deliberately dumb: one call, no retries, no fallback (the router owns
those, so every attempt is counted once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from shared.llm.errors import ProviderError
from shared.llm.providers.base import Answer, StreamState, is_transient_status, require_text, stream_text
from shared.llm.types import Prompt, ProviderResult

#: longest piece of a response body or exception kept in an error message
_SNIPPET = 200


class RestProvider:
    """A hosted model behind one JSON endpoint. Subclasses say where (`_url`), with which
    credentials (`_headers`), what to send (`_body`) and how to read the answer (`_answer`,
    `_delta`); sending, streaming, the bound on a whole stream and the error translation
    are here, once."""

    name: str
    #: statuses worth a retry beyond base.TRANSIENT_STATUSES (Anthropic's 529 "overloaded")
    extra_transient: frozenset[int] = frozenset()

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        max_output_tokens: int = 1024,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_key = api_key  # the key-based APIs' (OpenAI, Anthropic, a local server's)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_output_tokens = max_output_tokens
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """One pooled client per provider (thread-safe in httpx): a chat instance serves its
        concurrent turns over kept-alive connections instead of a TLS handshake each."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = httpx.Client(transport=self._transport)
        return self._client

    def warm_up(self) -> None:
        """Build the client (and whatever credentials it needs) before the first call."""
        self.client  # noqa: B018 (the property builds it)

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": bool(self.base_url)}

    # --- what each provider fills in -----------------------------------------------------
    def _url(self, model: str, *, stream: bool) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _body(self, model: str, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _answer(self, body: Any) -> Answer:
        """A whole answer's JSON body, read (KeyError, TypeError... mean malformed)."""
        raise NotImplementedError

    def _delta(self, event: Any, state: StreamState) -> str:
        """One server-sent event's JSON: its text (maybe empty); usage, finish reason and
        model go into `state`."""
        raise NotImplementedError

    # --- the calls ---------------------------------------------------------------------
    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        try:
            headers = self._headers()  # first: looking up credentials may name the project
            response = self.client.post(
                self._url(model, stream=False),
                json=self._body(model, prompt, stream=False),
                headers=headers,
                timeout=timeout_s,
            )
            if response.is_error:
                raise self._status_error(response)
            answer = self._answer(response.json())
        except ProviderError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc
        return ProviderResult(
            text=require_text(self.name, answer.text, answer.finish_reason, answer.raw),
            model=answer.model or model,
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            finish_reason=answer.finish_reason,
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        def deltas(state: StreamState) -> Iterator[str]:
            headers = self._headers()  # first: looking up credentials may name the project
            request = self.client.build_request(
                "POST",
                self._url(model, stream=True),
                json=self._body(model, prompt, stream=True),
                headers=headers,
                timeout=timeout_s,
            )
            response = self.client.send(request, stream=True)
            try:  # closed whether the stream ends, fails or is abandoned by its reader
                if response.is_error:
                    response.read()
                    raise self._status_error(response)
                for event in sse_events(response.iter_lines()):
                    yield self._delta(event, state)
            finally:
                response.close()
            if state.finish_reason is None:
                # A connection closed early ends the body like a finished one: without the
                # provider's last event the answer may be cut off mid-sentence.
                raise ProviderError(self.name, "stream ended before the answer's last event", transient=True)

        return stream_text(self.name, model, timeout_s, deltas, self.translate)

    # --- errors ------------------------------------------------------------------------
    def _event_error(self, error: Any) -> ProviderError:
        """An error event inside a stream (a provider overloaded mid-answer): the text so
        far is incomplete; worth another try."""
        return ProviderError(self.name, f"error event in the stream: {str(error)[:_SNIPPET]}", transient=True)

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        return ProviderError(
            self.name,
            f"HTTP {status}: {error_message(response)}",
            transient=status in self.extra_transient or is_transient_status(status),
            status=status,
        )

    def translate(self, exc: BaseException) -> ProviderError:
        """Transport and parsing failures → ProviderError with the right `transient`."""
        name = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(self.name, f"timed out ({name})", transient=True)
        if isinstance(exc, httpx.TransportError):
            return ProviderError(self.name, f"connection failed ({name}: {str(exc)[:_SNIPPET]})", transient=True)
        if isinstance(exc, (ValueError, KeyError, TypeError, IndexError, AttributeError)):
            # json.JSONDecodeError is a ValueError; a body of an unexpected shape fails on reading
            return ProviderError(self.name, f"malformed response ({name}: {str(exc)[:_SNIPPET]})", transient=True)
        return ProviderError(self.name, f"unexpected error ({name}: {str(exc)[:_SNIPPET]})", transient=False)


def error_message(response: httpx.Response) -> str:
    """What an error body says: `{"error": {"message", "status"?}}` from Google, OpenAI and
    Anthropic alike; the raw text when it is not that shape."""
    try:
        error = response.json()["error"]
        parts = [error.get("status"), error.get("type"), error.get("message")]
        text = " ".join(str(p) for p in parts if p)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text
    return text[:_SNIPPET] or response.reason_phrase


def sse_events(lines: Iterable[str]) -> Iterator[Any]:
    """The JSON payloads of a server-sent event stream, in order, up to OpenAI's
    `data: [DONE]`. Events are separated by blank lines; their `data:` lines are joined;
    comments (`:`) and the other fields (`event:`, `id:`) are not needed here (Anthropic
    repeats the event name in the payload's `type`)."""
    data: list[str] = []
    for line in _then_blank(lines):
        if line:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
            continue
        if not data:
            continue
        payload, data = "\n".join(data), []
        if payload == "[DONE]":
            return
        yield json.loads(payload)


def _then_blank(lines: Iterable[str]) -> Iterator[str]:
    """The lines, then one blank line: a stream whose last event lacks its blank line
    still yields that event."""
    yield from lines
    yield ""
