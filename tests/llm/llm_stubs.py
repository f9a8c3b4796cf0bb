"""Loopback stub servers speaking the providers' real REST shapes, scripted per test.

A test queues replies (`stub.push(...)`): a JSON body with a status, a raw body, an
SSE stream, or a delay longer than the client's timeout. Requests are recorded so a
test can check the URL, headers and body the provider really sent. Every server is shut
down when its test ends; a delayed handler is woken so it never outlives the test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; bytes/str → sent verbatim
    sse: list[str] | None = None  # SSE frames ("data: ...") sent one by one
    delay_s: float = 0.0
    #: SSE only: stop after this many frames by dropping the connection
    cut_after: int | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubServer:
    default: Reply | None = None
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.default is not None:
            return self.default
        return Reply(500, {"error": {"code": 500, "message": "stub: no reply queued", "status": "INTERNAL"}})


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw
            stub.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = stub.next_reply()
            if reply.delay_s and stub.stopping.wait(reply.delay_s):
                return
            try:
                if reply.sse is not None:
                    self._send_sse(reply)
                else:
                    self._send_body(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): expected in timeout tests

        def _send_body(self, reply: Reply) -> None:
            payload = reply.body
            data = (
                json.dumps(payload).encode()
                if isinstance(payload, (dict, list))
                else payload.encode()
                if isinstance(payload, str)
                else (payload or b"")
            )
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_sse(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, frame in enumerate(reply.sse or []):
                if reply.cut_after is not None and i >= reply.cut_after:
                    break
                self.wfile.write(frame.encode() + b"\n\n")
                self.wfile.flush()
            self.close_connection = True

    return Handler


# --- the providers' shapes -------------------------------------------------------------


def gemini_response(text: str, *, tokens_in: int = 12, tokens_out: int = 7, finish: str = "STOP") -> dict:
    """A Vertex generateContent body (camelCase, as the REST API sends it)."""
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}],
        "usageMetadata": {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
        },
        "modelVersion": "gemini-2.5-flash",
    }


def gemini_sse(pieces: list[str], *, tokens_in: int = 12, tokens_out: int = 7) -> list[str]:
    """streamGenerateContent?alt=sse frames: one candidate delta per frame, usage on the last."""
    frames = []
    for i, piece in enumerate(pieces):
        chunk: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}}]}
        if i == len(pieces) - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"] = {
                "promptTokenCount": tokens_in,
                "candidatesTokenCount": tokens_out,
                "totalTokenCount": tokens_in + tokens_out,
            }
        frames.append("data: " + json.dumps(chunk))
    return frames


def google_error(code: int, status: str, message: str = "stub error") -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def openai_response(text: str, *, model: str = "gpt-4.1-mini", tokens_in: int = 20, tokens_out: int = 9) -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
    }


def openai_sse(
    pieces: list[str], *, model: str = "gpt-4.1-mini", tokens_in: int = 20, tokens_out: int = 9
) -> list[str]:
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model}
    frames = [
        "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
        for p in pieces
    ]
    frames.append("data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    frames.append(
        "data: "
        + json.dumps(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
            }
        )
    )
    frames.append("data: [DONE]")
    return frames


def anthropic_response(text: str, *, model: str = "claude-haiku-4-5", tokens_in: int = 15, tokens_out: int = 6) -> dict:
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def anthropic_sse(
    pieces: list[str], *, model: str = "claude-haiku-4-5", tokens_in: int = 15, tokens_out: int = 6
) -> list[str]:
    def event(name: str, data: dict) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}"

    start = {
        **anthropic_response("", model=model, tokens_in=tokens_in, tokens_out=1),
        "content": [],
        "stop_reason": None,
    }
    frames = [
        event("message_start", {"type": "message_start", "message": start}),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    frames += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    frames += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": tokens_out},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return frames
