"""What the hosted providers' own HTTP transport (shared/llm/providers/rest.py) adds to
the SDK-shaped behaviour the other stub tests pin: reading server-sent events, a stream
that ends before its last event, an error event inside a stream, error bodies in the
attempt log, and Vertex's Application Default Credentials (looked up, refreshed, the
project taken from them)."""

from __future__ import annotations

from typing import Any

import pytest
from llm_stubs import Reply, StubServer, anthropic_sse, gemini_response, google_error, openai_sse

from shared.llm import LLMRouter, Message, Prompt, StreamReset
from shared.llm.providers.anthropic_api import AnthropicProvider
from shared.llm.providers.offline import OfflineProvider
from shared.llm.providers.openai_api import OpenAIProvider
from shared.llm.providers.rest import sse_events
from shared.llm.providers.vertex import VertexProvider

PROMPT = Prompt(system="Be brief.", messages=(Message("user", "what is a list?"),))


def router_for(provider: Any, model: str) -> LLMRouter:
    return LLMRouter(
        {provider.name: provider, "offline": OfflineProvider()},
        [provider.name, "offline"],
        {provider.name: {"default": model}},
        timeout_s=2.0,
        sleep=lambda s: None,
    )


def test_sse_events_joins_data_lines_skips_comments_and_stops_at_done() -> None:
    lines = [": keep-alive", "event: delta", 'data: {"a":', "data: 1}", "", "", 'data: {"b": 2}', "", "data: [DONE]"]
    lines += ["", 'data: {"after": "done"}', ""]
    assert list(sse_events(lines)) == [{"a": 1}, {"b": 2}]
    assert list(sse_events(['data: {"last": true}'])) == [{"last": True}]  # no closing blank line
    with pytest.raises(ValueError):
        list(sse_events(["data: {not json", ""]))


def test_an_openai_stream_cut_before_its_end_is_reset_and_falls_back(stub_server: StubServer) -> None:
    router = router_for(OpenAIProvider("sk", base_url=f"{stub_server.url}/v1"), "gpt-4.1-mini")
    # the connection closes after two deltas: no finish reason, no usage, no [DONE]
    stub_server.default = Reply(sse=openai_sse(["A list ", "is"]), cut_after=2)
    items = list(router.stream("chat", PROMPT))
    assert items[:2] == ["A list ", "is"]
    resets = [i for i in items if isinstance(i, StreamReset)]
    final = items[-1]
    assert len(resets) == 1 and final.provider == "offline"
    assert "stream ended before the answer's last event" in (final.attempts[0].error or "")


def test_an_error_event_inside_an_anthropic_stream_is_a_failure(stub_server: StubServer) -> None:
    router = router_for(AnthropicProvider("ak", base_url=stub_server.url), "claude-haiku-4-5")
    frames = anthropic_sse(["Ordered "])[:3]  # message_start, block start, one delta
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    stub_server.default = Reply(sse=[*frames, f"event: error\ndata: {__import__('json').dumps(overloaded)}"])
    items = list(router.stream("chat", PROMPT))
    assert items[0] == "Ordered " and any(isinstance(i, StreamReset) for i in items)
    assert items[-1].provider == "offline" and "overloaded_error" in (items[-1].attempts[0].error or "")


def test_error_bodies_reach_the_attempt_log_and_a_401_is_not_retried(stub_server: StubServer) -> None:
    router = router_for(OpenAIProvider("sk-wrong", base_url=f"{stub_server.url}/v1"), "gpt-4.1-mini")
    stub_server.push(Reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}))
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "offline" and len(stub_server.requests) == 1
    assert generation.attempts[0].error == "openai: HTTP 401: invalid_request_error Incorrect API key provided"


class ExpiringCredentials:
    """google-auth's credential contract (valid, refresh, apply), starting expired."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.refreshed = 0

    @property
    def valid(self) -> bool:
        return self.token is not None

    def refresh(self, request: Any) -> None:
        self.refreshed += 1
        self.token = f"fresh-token-{self.refreshed}"

    def apply(self, headers: dict[str, str]) -> None:
        headers["authorization"] = f"Bearer {self.token}"


def test_vertex_looks_up_adc_once_refreshes_and_takes_the_project_from_it(
    stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth

    credentials = ExpiringCredentials()
    lookups: list[tuple[str, ...]] = []

    def default(scopes: tuple[str, ...]) -> tuple[ExpiringCredentials, str]:
        lookups.append(tuple(scopes))
        return credentials, "adc-project"

    monkeypatch.setattr(google.auth, "default", default)
    provider = VertexProvider(None, "europe-west4", base_url=stub_server.url)
    router = router_for(provider, "gemini-2.5-flash")
    stub_server.push(Reply(body=gemini_response("one")), Reply(body=gemini_response("two")))
    assert [router.generate("chat", PROMPT).text for _ in range(2)] == ["one", "two"]
    router.warm_up("chat")  # looks nothing up again

    assert lookups == [("https://www.googleapis.com/auth/cloud-platform",)] and credentials.refreshed == 1
    assert all(r.headers["authorization"] == "Bearer fresh-token-1" for r in stub_server.requests)
    assert stub_server.requests[0].path.startswith("/v1beta1/projects/adc-project/locations/europe-west4/")


def test_vertex_without_a_project_fails_clearly_without_a_request(stub_server: StubServer) -> None:
    from google.oauth2.credentials import Credentials

    provider = VertexProvider(None, "europe-west4", base_url=stub_server.url, credentials=Credentials(token="t"))
    generation = router_for(provider, "gemini-2.5-flash").generate("chat", PROMPT)
    assert generation.provider == "offline" and stub_server.requests == []
    assert "no Google Cloud project" in (generation.attempts[0].error or "")


def test_vertex_error_status_and_message_are_kept(stub_server: StubServer) -> None:
    from google.oauth2.credentials import Credentials

    provider = VertexProvider("p", "us-central1", base_url=stub_server.url, credentials=Credentials(token="t"))
    stub_server.push(Reply(403, google_error(403, "PERMISSION_DENIED", "Vertex AI API has not been used")))
    generation = router_for(provider, "gemini-2.5-flash").generate("chat", PROMPT)
    assert generation.attempts[0].error == "vertex: HTTP 403: PERMISSION_DENIED Vertex AI API has not been used"


@pytest.mark.parametrize(
    "location,host",
    [
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
    ],
)
def test_vertex_endpoint_host_follows_the_location(location: str, host: str) -> None:
    url = VertexProvider("p", location, credentials=object())._url("gemini-2.5-flash", stream=True)
    path = f"projects/p/locations/{location}/publishers/google/models/gemini-2.5-flash"
    assert url == f"{host}/v1beta1/{path}:streamGenerateContent?alt=sse"
