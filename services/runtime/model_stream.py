"""One streamed model call over HTTP: the request, its errors, and the one reader of its
server-sent events, for both the OpenAI-compatible `chat/completions` stream and llama-server's
native `/completion` stream.

The reader keeps the caps every call has (output characters, streamed chunks, line length) and
the whole call runs under `max_call_seconds`; the body is always read to its end (so the
connection goes back to the pool) or the response is closed. Nothing here picks an endpoint
or builds a prompt.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from services.common.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from services.runtime.metrics import observe_model_error
from services.runtime.model_http import ConnectFailed, HttpFailure, ModelHttp, StreamReply, TimedOut
from services.runtime.model_text import sanitize
from services.runtime.models_config import RoleConfig

__all__ = ["DRAIN_CHARS", "EndpointLost", "ModelCall", "NativeApiMissing", "NotReady", "StreamFormat", "TokenCallback", "stream_call"]

TokenCallback = Callable[[str], Awaitable[None]]
# "chat": OpenAI-compatible chunks (choices[].delta.content, then `[DONE]`); "native":
# llama-server's /completion chunks (content, then one with stop: true and the timings).
StreamFormat = Literal["chat", "native"]
# Characters read past the end of the stream before giving up on reusing the connection.
DRAIN_CHARS = 65_536
TIMING_KEYS = ("prompt_n", "prompt_ms", "cache_n", "predicted_n", "predicted_ms")


@dataclass
class ModelCall:
    """What one model call returned and cost."""

    role: str
    model: str
    text: str
    latency_ms: float
    # Time from sending the request to the first streamed token.
    first_token_ms: float | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    finish_reason: str = ""
    # llama-server's own figures (prompt_n, cache_n, predicted_n, *_ms), when it sends them.
    timings: dict[str, Any] = field(default_factory=dict)
    # Why the call was ended before the server finished (an output or time cap), else "".
    # Such an output is never acted on: the loop treats it as an invalid directive to repair.
    cut_off: str = ""
    # Where it ran: the endpoint, the llama-server slot (-1: the server's choice), and the
    # prompt tokens sent as the ones this endpoint had already evaluated for the task.
    endpoint: str = ""
    slot: int = -1
    prefix_tokens: int = 0
    # Why the task left the endpoint it was on before this call (its prefix is then fresh).
    moved: str = ""
    # The generated token ids (native calls that report them), in order, and llama-server's
    # reason for stopping ("eos", "word", "limit").
    tokens: list[int] = field(default_factory=list)
    stop_type: str = ""

    def as_event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "role": self.role,
            "model": self.model,
            "output": self.text,
            "latency_ms": round(self.latency_ms, 3),
            "first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 3),
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cached_prompt_tokens": self.cached_prompt_tokens,
            },
            "timings": self.timings,
        }
        if self.cut_off:
            data["cut_off"] = self.cut_off
        if self.endpoint:
            data["endpoint"] = self.endpoint
        if self.slot >= 0:
            data["slot"] = self.slot
        if self.prefix_tokens:
            data["prefix_tokens"] = self.prefix_tokens
        if self.moved:
            data["moved"] = self.moved
        return data


class NativeApiMissing(FailedPrecondition):
    """The chat server has no llama-server native API (`/completion` answered 404): another
    OpenAI-compatible server. The runtime then asks for one JSON directive per step instead."""


class EndpointLost(Unavailable):
    """The server dropped the call before any of its output reached the caller: the call may
    go to another endpoint of the role (a model call changes nothing, and nothing was shown)."""


class NotReady(Exception):
    """The model server took nothing of the request (refused it, or is still loading): trying
    again, or another endpoint, cannot repeat anything."""


async def stream_call(
    http: ModelHttp, url: str, body: dict[str, Any], config: RoleConfig, call: ModelCall,
    on_token: TokenCallback | None, *, fmt: StreamFormat, headers: dict[str, str] | None = None,
    max_tokens: int | None = None,
) -> None:
    """POSTs `body` to `url` and reads the streamed answer into `call` (text, usage, timings,
    finish reason, cut_off); `max_tokens`: what the body asks for (default: the role's). Raises NotReady (nothing was taken), NativeApiMissing (a native
    URL that does not exist), DeadlineExceeded (the server went silent) or Unavailable."""
    reader = _Reader(call, config, on_token, fmt, max_tokens or config.max_tokens)
    role = call.role
    try:
        # The whole call, not just each read, is bounded: a server that sends steadily but
        # never ends cannot hold a task (and its share of the loop) forever.
        async with asyncio.timeout(config.max_call_seconds):
            async with http.stream(url, json_body=body, headers=headers, timeout=config.timeout_seconds) as response:
                if response.status == 503:
                    raise NotReady(f"it answered HTTP 503 ({(await response.read_some(200)).decode(errors='replace')})")
                if response.status == 404 and fmt == "native":
                    raise NativeApiMissing(f"{url} does not exist: the model server has no llama-server native API")
                if response.status != 200:
                    observe_model_error(role, "http")
                    detail = (await response.read_some(500)).decode(errors="replace")
                    raise Unavailable(f"model server for role {role!r} answered HTTP {response.status}: {detail}")
                await reader.read(response)
    except TimeoutError:
        observe_model_error(role, "call_timeout")
        call.cut_off = f"the call took longer than max_call_seconds={config.max_call_seconds:g}"
    except ConnectFailed as exc:
        raise NotReady(str(exc)) from exc
    except TimedOut as exc:
        observe_model_error(role, "timeout")
        raise DeadlineExceeded(
            f"model server for role {role!r} at {url} timed out: nothing arrived for "
            f"{config.timeout_seconds:g} s (timeout_seconds; {exc})"
        ) from exc
    except HttpFailure as exc:
        observe_model_error(role, "unreachable")
        lost = EndpointLost if reader.first_token_ms is None else Unavailable
        raise lost(f"model server for role {role!r} at {url} is unreachable: {exc}") from exc
    finally:
        call.text = "".join(reader.pieces)
        call.latency_ms = (time.perf_counter() - reader.started) * 1000
        call.first_token_ms = reader.first_token_ms


class _Reader:
    """Reads one stream: sanitised deltas, usage and timings, and the caps on its output."""

    def __init__(
        self, call: ModelCall, config: RoleConfig, on_token: TokenCallback | None, fmt: StreamFormat, max_tokens: int,
    ) -> None:
        self.call = call
        self.pieces: list[str] = []
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None
        self._fmt = fmt
        self._on_token = on_token
        self._chars = 0
        self._chunks = 0
        self._char_cap = config.output_char_cap
        # Each streamed chunk holds at least one token, so more chunks than max_tokens (with
        # slack for servers that split tokens) means a server that ignores max_tokens.
        self._max_tokens = max_tokens
        self._chunk_cap = 2 * max_tokens + 16
        # A line holds one chunk: JSON escapes may take 6 characters for one of output.
        self._line_cap = 6 * self._char_cap + 4096

    async def read(self, response: StreamReply) -> None:
        """Reads the SSE lines in linear time, to the end of the response after the last chunk
        (so the connection can be reused), or until a cap is reached (the connection is closed)."""
        partial: list[str] = []
        partial_len = 0
        drained = -1  # characters read since the stream's end; -1 until it came
        async for text in response.text_pieces():
            if drained >= 0:
                # Read to the end (normally nothing is left) so the connection is pooled;
                # a server that keeps sending gets its connection closed instead.
                drained += len(text)
                if drained > DRAIN_CHARS:
                    return
                continue
            lines = text.split("\n")
            for index, piece in enumerate(lines):
                if index == len(lines) - 1:
                    if piece:
                        partial.append(piece)
                        partial_len += len(piece)
                    if partial_len > self._line_cap:
                        self._cut(f"the model server sent a line longer than {self._line_cap} characters")
                        return
                    break
                line = "".join(partial) + piece if partial else piece
                partial, partial_len = [], 0
                if await self._line(line.rstrip("\r")) == "stop":
                    if self.call.cut_off:
                        return  # leaving unread: closing the response drops the connection
                    drained = 0
                    break

    async def _line(self, line: str) -> str:
        if not line.startswith("data:"):
            return ""
        payload = line[5:].strip()
        if payload == "[DONE]":
            return "stop"
        try:
            chunk = json.loads(payload)
        except (ValueError, RecursionError):
            raise Unavailable(
                f"model server for role {self.call.role!r} sent a chunk that is not JSON: {sanitize(payload[:120])!r}"
            ) from None
        if not isinstance(chunk, dict):
            return ""
        if self._fmt == "native":
            return await self._native(chunk)
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = (choice.get("delta") or {}).get("content") or ""
            if isinstance(delta, str) and delta and await self._delta(sanitize(delta)) == "stop":
                return "stop"
            if choice.get("finish_reason"):
                self.call.finish_reason = str(choice["finish_reason"])
        _read_usage(self.call, chunk)
        return ""

    async def _native(self, chunk: dict[str, Any]) -> str:
        """llama-server's /completion chunk: content and the token ids sampled for it; the last
        one (stop: true) carries why it stopped and the timings."""
        tokens = chunk.get("tokens")
        if isinstance(tokens, list):
            self.call.tokens.extend(int(token) for token in tokens if isinstance(token, int))
        delta = chunk.get("content") or ""
        if isinstance(delta, str) and delta and await self._delta(sanitize(delta)) == "stop":
            return "stop"
        if not chunk.get("stop"):
            return ""
        self.call.stop_type = str(chunk.get("stop_type") or "")
        self.call.finish_reason = "length" if self.call.stop_type == "limit" else "stop"
        timings = chunk.get("timings") or {}
        if isinstance(timings, dict):
            self.call.timings = {key: timings[key] for key in TIMING_KEYS if key in timings}
            self.call.prompt_tokens = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
            self.call.completion_tokens = int(timings.get("predicted_n", 0))
            self.call.cached_prompt_tokens = int(timings.get("cache_n", 0))
        return "stop"

    async def _delta(self, delta: str) -> str:
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
        self._chunks += 1
        room = self._char_cap - self._chars
        if self._chunks > self._chunk_cap:
            delta = ""
            self._cut(f"the server sent more than {self._chunk_cap} chunks for max_tokens={self._max_tokens}")
        elif len(delta) > room:
            delta = delta[:room]
            self._cut(f"the output passed max_output_chars={self._char_cap}")
        if delta:
            self.pieces.append(delta)
            self._chars += len(delta)
            if self._on_token is not None:
                await self._on_token(delta)
        return "stop" if self.call.cut_off else ""

    def _cut(self, reason: str) -> None:
        if not self.call.cut_off:
            self.call.cut_off = reason
            observe_model_error(self.call.role, "output_limit")


def _read_usage(call: ModelCall, chunk: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        call.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        call.completion_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        call.cached_prompt_tokens = int(details.get("cached_tokens") or 0)
    timings = chunk.get("timings")
    if timings:
        call.timings = {key: timings[key] for key in TIMING_KEYS if key in timings}
        if not call.cached_prompt_tokens and "cache_n" in timings:
            call.cached_prompt_tokens = int(timings["cache_n"])
