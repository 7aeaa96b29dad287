"""llama-server's native endpoints, for the staged decision: `/completion` (a raw prompt,
optionally constrained by a JSON schema or a grammar, streamed) and the log-probabilities of the
first token of each candidate step, with `/tokenize` to know those tokens.

Only the runtime talks to model servers; this module is the part of that client the staged
decision needs beyond the OpenAI-compatible chat endpoint in `model_client.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from services.common.errors import FailedPrecondition, Unavailable
from services.runtime.metrics import observe_model_call, observe_model_error
from services.runtime.model_client import ModelCall, TokenCallback
from services.runtime.models_config import ModelsConfig, RoleConfig

__all__ = ["CompletionModel", "LlamaCompletions", "NativeApiMissing", "StepScores"]

# How many of the most likely first tokens llama-server reports; a candidate outside them gets
# FLOOR_LOGPROB.
TOP_TOKENS = 300
FLOOR_LOGPROB = -30.0

StepScores = dict[str, float]


class NativeApiMissing(FailedPrecondition):
    """The chat server has no llama-server native API (`/completion` answered 404): another
    OpenAI-compatible server. The runtime then asks for one JSON directive per step instead."""


class CompletionModel(Protocol):
    """What the staged decision needs of a model (a replay fakes it from the log)."""

    @property
    def config(self) -> ModelsConfig: ...

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False,
    ) -> ModelCall: ...

    async def first_token_scores(self, role: str, prompt: str, candidates: Sequence[str]) -> tuple[StepScores, ModelCall]: ...


def _native_base(config: RoleConfig) -> str:
    """llama-server serves its native API beside the OpenAI one: `http://host:port/v1` → `http://host:port`."""
    base = config.endpoint.rstrip("/")
    return base.removesuffix("/v1")


class LlamaCompletions:
    """Calls llama-server's native endpoints by role."""

    def __init__(
        self, config: ModelsConfig, *, transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        # The runtime passes the chat client's own pool, so each model server keeps one.
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(transport=transport, timeout=None)
        self._first_tokens: dict[tuple[str, str], int] = {}

    @property
    def config(self) -> ModelsConfig:
        return self._config

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _post(self, config: RoleConfig, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{_native_base(config)}{path}"
        try:
            response = await self._http.post(url, json=body, timeout=config.timeout_seconds)
        except httpx.TimeoutException as exc:
            observe_model_error("chat", "timeout")
            raise Unavailable(f"model server at {url} did not answer within {config.timeout_seconds}s") from exc
        except httpx.HTTPError as exc:
            observe_model_error("chat", "unreachable")
            raise Unavailable(f"model server at {url} is unreachable: {exc!r}") from exc
        if response.status_code == 404:
            raise NativeApiMissing(f"{url} does not exist: the model server has no llama-server native API")
        if response.status_code != 200:
            raise Unavailable(f"model server at {url} answered HTTP {response.status_code}: {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result

    async def _first_token(self, config: RoleConfig, text: str) -> int:
        key = (config.endpoint, text)
        if key not in self._first_tokens:
            tokens = (await self._post(config, "/tokenize", {"content": " " + text}))["tokens"]
            self._first_tokens[key] = int(tokens[0]) if tokens else -1
        return self._first_tokens[key]

    async def first_token_scores(self, role: str, prompt: str, candidates: Sequence[str]) -> tuple[StepScores, ModelCall]:
        """The log-probability of each candidate's first token right after `prompt`."""
        config = self._config.require(role)
        started = time.perf_counter()
        body = {**config.extra_body, "prompt": prompt, "n_predict": 1, "n_probs": TOP_TOKENS, "temperature": 0.0,
                "cache_prompt": True}
        answer = await self._post(config, "/completion", body)
        probabilities = answer.get("completion_probabilities") or [{}]
        top = {int(item["id"]): float(item["logprob"]) for item in probabilities[0].get("top_logprobs", [])}
        scores = {name: top.get(await self._first_token(config, name), FLOOR_LOGPROB) for name in candidates}
        call = _call_of(role, config, answer, text="", started=started)
        return scores, call

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False,
    ) -> ModelCall:
        """Streams one completion of `prompt` and returns the whole text with its figures.
        `copying`: the text should repeat what the prompt holds (a fact from a result), so no
        repetition penalty pushes the model off the words it should copy."""
        config = self._config.require(role)
        body: dict[str, Any] = {
            **config.extra_body,
            "prompt": prompt,
            "n_predict": max_tokens,
            "temperature": config.temperature if temperature is None else temperature,
            "stop": list(stop),
            "stream": True,
            "cache_prompt": True,
        }
        if copying:
            body["repeat_penalty"] = 1.0
        if json_schema is not None:
            body["json_schema"] = json_schema
            body.update(config.json_extra_body)
        started = time.perf_counter()
        first_token_ms: float | None = None
        pieces: list[str] = []
        last: dict[str, Any] = {}
        url = f"{_native_base(config)}/completion"
        try:
            async with self._http.stream("POST", url, json=body, timeout=config.timeout_seconds) as response:
                if response.status_code == 404:
                    raise NativeApiMissing(f"{url} does not exist: the model server has no llama-server native API")
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:300]
                    observe_model_error(role, "http")
                    raise Unavailable(f"model server at {url} answered HTTP {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    chunk = json.loads(line[5:].strip())
                    delta = str(chunk.get("content") or "")
                    if delta:
                        if first_token_ms is None:
                            first_token_ms = (time.perf_counter() - started) * 1000
                        pieces.append(delta)
                        if on_token is not None:
                            await on_token(delta)
                    if chunk.get("stop"):
                        last = chunk
                        break
        except httpx.TimeoutException as exc:
            observe_model_error(role, "timeout")
            raise Unavailable(f"model server at {url} did not answer within {config.timeout_seconds}s") from exc
        except httpx.HTTPError as exc:
            observe_model_error(role, "unreachable")
            raise Unavailable(f"model server at {url} is unreachable: {exc!r}") from exc
        call = _call_of(role, config, last, text="".join(pieces), started=started)
        call.first_token_ms = first_token_ms
        return call


def _call_of(role: str, config: RoleConfig, answer: dict[str, Any], *, text: str, started: float) -> ModelCall:
    timings = answer.get("timings") or {}
    call = ModelCall(
        role=role, model=config.model, text=text, latency_ms=(time.perf_counter() - started) * 1000, first_token_ms=None,
        prompt_tokens=int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0)),
        completion_tokens=int(timings.get("predicted_n", 0)),
        cached_prompt_tokens=int(timings.get("cache_n", 0)),
        finish_reason="length" if answer.get("stop_type") == "limit" else "stop",
        timings={key: timings[key] for key in ("prompt_n", "prompt_ms", "cache_n", "predicted_n", "predicted_ms") if key in timings},
    )
    observe_model_call(role, call.latency_ms, call.prompt_tokens, call.completion_tokens, call.cached_prompt_tokens, None)
    return call
