"""The one HTTP client to model servers: OpenAI-compatible chat completions (streamed, optionally
constrained by a JSON schema) and embeddings, by role. Every call records latency, token usage
and llama-server's `timings`."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from services.common.errors import FailedPrecondition, Unavailable
from services.runtime.metrics import observe_embedding, observe_model_call, observe_model_error
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
        self._http = httpx.AsyncClient(transport=transport, timeout=None)

    @property
    def config(self) -> ModelsConfig:
        return self._config

    async def close(self) -> None:
        await self._http.aclose()

    def _role(self, role: str) -> RoleConfig:
        config = self._config.role(role)
        if config is None:
            raise FailedPrecondition(f"no model is configured for role {role!r} in models.yaml")
        return config

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
        config = self._role(role)
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
        started = time.perf_counter()
        first_token_ms: float | None = None
        pieces: list[str] = []
        call = ModelCall(role=role, model=config.model, text="", latency_ms=0.0, first_token_ms=None)
        try:
            async with self._http.stream(
                "POST",
                f"{config.endpoint.rstrip('/')}/chat/completions",
                json=body,
                headers=self._headers(config),
                timeout=config.timeout_seconds,
            ) as response:
                if response.status_code != 200:
                    observe_model_error(role, "http")
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    raise Unavailable(
                        f"model server for role {role!r} answered HTTP {response.status_code}: {detail}"
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content") or ""
                        if delta:
                            if first_token_ms is None:
                                first_token_ms = (time.perf_counter() - started) * 1000
                            pieces.append(delta)
                            if on_token is not None:
                                await on_token(delta)
                        if choice.get("finish_reason"):
                            call.finish_reason = str(choice["finish_reason"])
                    _read_usage(call, chunk)
        except httpx.HTTPError as exc:
            observe_model_error(role, "unreachable")
            raise Unavailable(
                f"model server for role {role!r} at {config.endpoint} is unreachable: {exc!r}"
            ) from exc
        call.text = "".join(pieces)
        call.latency_ms = (time.perf_counter() - started) * 1000
        call.first_token_ms = first_token_ms
        observe_model_call(
            role, call.latency_ms, call.prompt_tokens, call.completion_tokens, call.cached_prompt_tokens, first_token_ms
        )
        return call

    async def count_tokens(self, role: str, text: str) -> int:
        """Tokens of `text` with the role's own tokenizer (llama-server's `/tokenize`, beside its
        `/v1`); Unavailable when the server has no such endpoint or cannot be reached."""
        config = self._role(role)
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
