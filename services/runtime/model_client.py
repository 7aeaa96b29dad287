"""The one HTTP client to model servers: OpenAI-compatible chat completions (streamed, optionally
constrained by a JSON schema) and embeddings, by role. Every call records latency, token usage
and llama-server's `timings`. Which endpoint of a role serves a call is the pool's choice
(`model_pool.py`); the stream is read by `model_stream.py`, shared with the native client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from services.common.errors import FailedPrecondition, Unavailable
from services.runtime.metrics import observe_embedding, observe_model_call, observe_model_error
from services.runtime.model_http import HttpFailure, ModelHttp, TimedOut
from services.runtime.model_pool import EndpointPool
from services.runtime.model_stream import (
    EndpointLost,
    ModelCall,
    NotReady,
    TokenCallback,
    stream_call,
)
from services.runtime.models_config import ModelsConfig, RoleConfig

__all__ = ["ChatModel", "ModelCall", "ModelClient", "TokenCallback"]


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
        session: str = "",
    ) -> ModelCall: ...


class ModelClient:
    """Calls model endpoints by role. One instance per runtime; close it on shutdown."""

    def __init__(
        self, config: ModelsConfig, *, http: ModelHttp | None = None, pool: EndpointPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        # How the backoff before trying a restarting server again waits (a test's own, to step it).
        self._sleep = sleep
        # One client, so one pool of connections: each model server's connections are kept alive
        # across calls (every response is read to its end or closed, so it goes back to the pool),
        # with the calls in flight bounded per server (model_http.py).
        self._http = http or ModelHttp()
        self._pool = pool or EndpointPool(config)

    @property
    def config(self) -> ModelsConfig:
        return self._config

    @property
    def http(self) -> ModelHttp:
        """The pooled HTTP client (shared with the staged decision's native calls)."""
        return self._http

    @property
    def pool(self) -> EndpointPool:
        """Which endpoint serves each call (shared with the staged decision's native calls)."""
        return self._pool

    async def close(self) -> None:
        await self._http.close()

    def _headers(self, config: RoleConfig) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}

    async def chat(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
        session: str = "",
    ) -> ModelCall:
        """Streams one chat completion and returns the whole text with its figures. `session`
        (a task id) keeps a task's calls on one endpoint of the role."""
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
        # A server that refuses the call (or drops it before any token came) is skipped for
        # another endpoint of the role; with none left, one that is restarting (refusing
        # connections, or llama-server's 503 while it loads the model) is waited for, with
        # backoff, up to connect_wait_seconds: nothing was taken, so trying again repeats nothing.
        give_up = time.monotonic() + config.connect_wait_seconds
        delay = 0.1
        tried: set[str] = set()
        retried: set[str] = set()
        while True:
            lease = self._pool.acquire(role, session)
            call = ModelCall(role=role, model=config.model, text="", latency_ms=0.0, first_token_ms=None,
                             endpoint=lease.endpoint, moved=lease.moved)
            url = f"{lease.endpoint.rstrip('/')}/chat/completions"
            try:
                await stream_call(self._http, url, body, config, call, on_token, fmt="chat",
                                  headers=self._headers(config))
                self._pool.mark_up(lease.endpoint)
                break
            except (NotReady, EndpointLost) as exc:
                if isinstance(exc, EndpointLost) and lease.endpoint not in retried:
                    # A kept-alive connection the server closed as it was reused: once more, on
                    # a new connection, before the endpoint counts as failed.
                    retried.add(lease.endpoint)
                    continue
                self._pool.mark_down(lease.endpoint, f"a call failed: {exc}")
                tried.add(lease.endpoint)
                if [url for url in self._pool.healthy(role) if url not in tried]:
                    continue
                if isinstance(exc, EndpointLost) or time.monotonic() + delay > give_up:
                    observe_model_error(role, "unreachable")
                    raise Unavailable(
                        f"model server for role {role!r} at {lease.endpoint} is unreachable: {exc} "
                        f"(waited {config.connect_wait_seconds:g} s)"
                    ) from None
                tried.clear()
                await self._sleep(delay)
                delay = min(delay * 2, 1.0)
            finally:
                self._pool.release(lease)
        observe_model_call(
            role, call.latency_ms, call.prompt_tokens, call.completion_tokens, call.cached_prompt_tokens,
            call.first_token_ms,
        )
        return call

    async def probe(self, role: str = "chat", timeout: float = 3.0) -> str:
        """"" when one of the role's servers answers an HTTP request at all (any status), else
        why not: frozen or absent servers, which health then reports. Each endpoint's answer
        marks it healthy or not in the pool, so calls skip the ones that fail."""
        config = self._config.require(role)
        problems: list[str] = []
        for endpoint in config.endpoints:
            try:
                await self._http.get(f"{endpoint.rstrip('/')}/models", headers=self._headers(config), timeout=timeout)
            except TimedOut:
                problem = f"the model server for role {role!r} at {endpoint} did not answer within {timeout:g} s"
            except HttpFailure as exc:
                problem = f"the model server for role {role!r} at {endpoint} is unreachable: {exc}"
            else:
                problem = ""
            if problem:
                self._pool.mark_down(endpoint, f"it failed its health check: {problem}")
                problems.append(problem)
            else:
                self._pool.mark_up(endpoint)
        return "; ".join(problems) if len(problems) == len(config.endpoints) else ""

    def _endpoint(self, role: str) -> str:
        """An endpoint of the role for a call of no task: the first healthy one."""
        return (self._pool.healthy(role) or self._config.require(role).endpoints)[0]

    async def count_tokens(self, role: str, text: str) -> int:
        """Tokens of `text` with the role's own tokenizer (llama-server's `/tokenize`, beside its
        `/v1`); Unavailable when the server has no such endpoint or cannot be reached."""
        config = self._config.require(role)
        root = self._endpoint(role).rstrip("/").removesuffix("/v1")
        try:
            response = await self._http.post(
                f"{root}/tokenize",
                json_body={"content": text, "add_special": False},
                headers=self._headers(config),
                timeout=min(config.timeout_seconds, 10.0),
            )
        except HttpFailure as exc:
            raise Unavailable(f"tokenizer of role {role!r} is unreachable: {exc}") from exc
        if response.status != 200:
            raise Unavailable(f"tokenizer of role {role!r} answered HTTP {response.status}")
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
        endpoint = self._endpoint("embedding")
        try:
            response = await self._http.post(
                f"{endpoint.rstrip('/')}/embeddings",
                json_body={"model": config.model, "input": texts},
                headers=self._headers(config),
                timeout=config.timeout_seconds,
            )
        except HttpFailure as exc:
            raise Unavailable(f"embedding server at {endpoint} is unreachable: {exc}") from exc
        if response.status != 200:
            raise Unavailable(
                f"embedding server answered HTTP {response.status}: {response.text[:500]}"
            )
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        observe_embedding((time.perf_counter() - started) * 1000, len(texts))
        return [list(map(float, item["embedding"])) for item in data], config.model
