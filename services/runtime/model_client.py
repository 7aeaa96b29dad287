"""The one HTTP client to model servers: OpenAI-compatible chat completions (streamed, optionally
constrained by a JSON schema) and embeddings, by role. Every call records latency, token usage
and llama-server's `timings`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from services.common.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from services.runtime.metrics import observe_embedding, observe_model_call, observe_model_error
from services.runtime.model_text import sanitize
from services.runtime.model_transport import model_transport
from services.runtime.models_config import ModelsConfig, RoleConfig

__all__ = ["ChatModel", "ModelCall", "ModelClient", "TokenCallback"]

TokenCallback = Callable[[str], Awaitable[None]]


@dataclass
class ModelCall:
    """What one chat completion returned and cost."""

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

    def as_event_data(self) -> dict[str, Any]:
        return {
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
            **({"cut_off": self.cut_off} if self.cut_off else {}),
        }


class ChatModel(Protocol):
    """What the loop needs of a model: its config and streamed chat calls (a replay fakes it)."""

    @property
    def config(self) -> ModelsConfig: ...

    async def chat(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
    ) -> ModelCall: ...


class ModelClient:
    """Calls model endpoints by role. One instance per runtime; close it on shutdown."""

    def __init__(self, config: ModelsConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        # One client, so one pool: each model server's connection is kept alive across calls
        # (every response is read to its end or closed, so the connection goes back to the pool).
        # model_transport.py: every connection kept alive, calls in flight bounded per server.
        self._http = httpx.AsyncClient(transport=transport or model_transport(), timeout=None)

    @property
    def config(self) -> ModelsConfig:
        return self._config

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled HTTP client (shared with the staged decision's native calls)."""
        return self._http

    async def close(self) -> None:
        await self._http.aclose()

    def _headers(self, config: RoleConfig) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}

    async def chat(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
    ) -> ModelCall:
        """Streams one chat completion and returns the whole text with its figures."""
        config = self._config.require(role)
        body: dict[str, Any] = {
            **config.extra_body,
            "model": config.model,
            "messages": messages,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "action_directive", "schema": json_schema, "strict": True},
            }
            body.update(config.json_extra_body)
        call = ModelCall(role=role, model=config.model, text="", latency_ms=0.0, first_token_ms=None)
        stream = _Stream(call, config, on_token)
        # A server that is restarting (refusing connections, or llama-server's 503 while it
        # loads the model) is waited for, with backoff, up to connect_wait_seconds: nothing was
        # sent to it, so trying again cannot repeat anything.
        give_up = time.monotonic() + config.connect_wait_seconds
        delay = 0.1
        while True:
            try:
                await self._stream_once(config, body, stream)
                break
            except _NotReady as exc:
                if time.monotonic() + delay > give_up:
                    observe_model_error(role, "unreachable")
                    raise Unavailable(
                        f"model server for role {role!r} at {config.endpoint} is unreachable: {exc} "
                        f"(waited {config.connect_wait_seconds:g} s)"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        call.text = "".join(stream.pieces)
        call.latency_ms = (time.perf_counter() - stream.started) * 1000
        call.first_token_ms = stream.first_token_ms
        observe_model_call(
            role, call.latency_ms, call.prompt_tokens, call.completion_tokens, call.cached_prompt_tokens,
            call.first_token_ms,
        )
        return call

    async def _stream_once(self, config: RoleConfig, body: dict[str, Any], stream: _Stream) -> None:
        role = stream.call.role
        try:
            # The whole call, not just each read, is bounded: a server that sends steadily but
            # never ends cannot hold a task (and its share of the loop) forever.
            async with asyncio.timeout(config.max_call_seconds):
                async with self._http.stream(
                    "POST",
                    f"{config.endpoint.rstrip('/')}/chat/completions",
                    json=body,
                    headers=self._headers(config),
                    timeout=config.timeout_seconds,
                ) as response:
                    if response.status_code == 503:
                        raise _NotReady(f"it answered HTTP 503 ({(await _read_some(response, 200)).decode(errors='replace')})")
                    if response.status_code != 200:
                        observe_model_error(role, "http")
                        detail = (await _read_some(response, 500)).decode(errors="replace")
                        raise Unavailable(
                            f"model server for role {role!r} answered HTTP {response.status_code}: {detail}"
                        )
                    await stream.read(response)
        except TimeoutError:
            observe_model_error(role, "call_timeout")
            stream.call.cut_off = f"the call took longer than max_call_seconds={config.max_call_seconds:g}"
        except httpx.ConnectError as exc:
            raise _NotReady(repr(exc)) from exc
        except httpx.TimeoutException as exc:
            observe_model_error(role, "timeout")
            raise DeadlineExceeded(
                f"model server for role {role!r} at {config.endpoint} timed out: nothing arrived for "
                f"{config.timeout_seconds:g} s (timeout_seconds; {type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            observe_model_error(role, "unreachable")
            raise Unavailable(
                f"model server for role {role!r} at {config.endpoint} is unreachable: {exc!r}"
            ) from exc

    async def probe(self, role: str = "chat", timeout: float = 3.0) -> str:
        """"" when the role's server answers an HTTP request at all (any status), else why not:
        a frozen or absent server, which health then reports."""
        config = self._config.require(role)
        try:
            await self._http.get(f"{config.endpoint.rstrip('/')}/models", headers=self._headers(config), timeout=timeout)
        except httpx.TimeoutException:
            return f"the model server for role {role!r} at {config.endpoint} did not answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            return f"the model server for role {role!r} at {config.endpoint} is unreachable: {exc!r}"
        return ""

    async def count_tokens(self, role: str, text: str) -> int:
        """Tokens of `text` with the role's own tokenizer (llama-server's `/tokenize`, beside its
        `/v1`); Unavailable when the server has no such endpoint or cannot be reached."""
        config = self._config.require(role)
        root = config.endpoint.rstrip("/").removesuffix("/v1")
        try:
            response = await self._http.post(
                f"{root}/tokenize",
                json={"content": text, "add_special": False},
                headers=self._headers(config),
                timeout=min(config.timeout_seconds, 10.0),
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"tokenizer of role {role!r} is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise Unavailable(f"tokenizer of role {role!r} answered HTTP {response.status_code}")
        return len(response.json()["tokens"])

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], str]:
        """Embeds `texts` with the `embedding` role; FAILED_PRECONDITION when none is configured."""
        config = self._config.role("embedding")
        if config is None:
            raise FailedPrecondition(
                "embeddings are disabled: no `embedding` role in config/models.yaml. "
                "Add one (an OpenAI-compatible /v1 endpoint serving embeddings, e.g. llama-server "
                "started with --embeddings) to enable memory.",
                reason="EMBEDDINGS_DISABLED",
            )
        started = time.perf_counter()
        try:
            response = await self._http.post(
                f"{config.endpoint.rstrip('/')}/embeddings",
                json={"model": config.model, "input": texts},
                headers=self._headers(config),
                timeout=config.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"embedding server at {config.endpoint} is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise Unavailable(
                f"embedding server answered HTTP {response.status_code}: {response.text[:500]}"
            )
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        observe_embedding((time.perf_counter() - started) * 1000, len(texts))
        return [list(map(float, item["embedding"])) for item in data], config.model


class _NotReady(Exception):
    """The model server took nothing of the request (refused it, or is still loading)."""


# Characters read past `[DONE]` before giving up on reusing the connection.
DRAIN_CHARS = 65_536


class _Stream:
    """Reads one streamed completion: sanitised deltas, usage, and the caps on its output."""

    def __init__(self, call: ModelCall, config: RoleConfig, on_token: TokenCallback | None) -> None:
        self.call = call
        self.pieces: list[str] = []
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None
        self._on_token = on_token
        self._chars = 0
        self._chunks = 0
        self._char_cap = config.output_char_cap
        # Each streamed chunk holds at least one token, so more chunks than max_tokens (with
        # slack for servers that split tokens) means a server that ignores max_tokens.
        self._max_tokens = config.max_tokens
        self._chunk_cap = 2 * config.max_tokens + 16
        # A line holds one chunk: JSON escapes may take 6 characters for one of output.
        self._line_cap = 6 * self._char_cap + 4096

    async def read(self, response: httpx.Response) -> None:
        """Reads the SSE lines in linear time, to the end of the response after `[DONE]` (so
        the connection can be reused), or until a cap is reached (the connection is closed)."""
        partial: list[str] = []
        partial_len = 0
        drained = -1  # characters read since `[DONE]`; -1 until it came
        async for text in response.aiter_text():
            if drained >= 0:
                # Read to the end (normally nothing is left) so httpx pools the connection;
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


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of an error body, without reading a huge one into memory."""
    data = b""
    async for piece in response.aiter_bytes():
        data += piece
        if len(data) >= limit:
            break
    return data[:limit]


def _read_usage(call: ModelCall, chunk: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        call.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        call.completion_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        call.cached_prompt_tokens = int(details.get("cached_tokens") or 0)
    timings = chunk.get("timings")
    if timings:
        call.timings = {
            key: timings[key]
            for key in ("prompt_n", "prompt_ms", "cache_n", "predicted_n", "predicted_ms")
            if key in timings
        }
        if not call.cached_prompt_tokens and "cache_n" in timings:
            call.cached_prompt_tokens = int(timings["cache_n"])
