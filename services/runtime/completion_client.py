"""llama-server's native endpoints, for the staged decision: `/completion` (a prompt, optionally
constrained by a JSON schema, streamed) and the log-probabilities of the first token of each
candidate step, with `/tokenize` and `/detokenize` to know the tokens.

Prompts go as token ids: for a task (a *session*), the tokens its slot already evaluated and
generated (`prompt_ledger.py`) and the new text tokenised after them, so the server's prompt
cache serves every earlier token. A server without `/tokenize` gets the prompt as text. Calls go
to the session's endpoint and slot (`model_pool.py`); an endpoint that does not answer is
skipped and the call goes to the next. Only the runtime talks to model servers; this module is
the part of that client the staged decision needs beyond the chat endpoint in `model_client.py`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from services.common.errors import Unavailable
from services.runtime.metrics import observe_model_call, observe_model_error
from services.runtime.model_http import ConnectFailed, HttpFailure, ModelHttp, TimedOut
from services.runtime.model_pool import EndpointPool, Lease
from services.runtime.model_stream import (
    EndpointLost,
    ModelCall,
    NativeApiMissing,
    NotReady,
    TokenCallback,
    stream_call,
)
from services.runtime.models_config import ModelsConfig, RoleConfig
from services.runtime.prompt_ledger import Unit, units_of_pieces

__all__ = ["CompletionModel", "LlamaCompletions", "NativeApiMissing", "StepScores", "native_base"]

# How many of the most likely first tokens llama-server reports; a candidate outside them gets
# FLOOR_LOGPROB.
TOP_TOKENS = 300
FLOOR_LOGPROB = -30.0
# First-token answers kept for calls of no task (the staged decision's calibration prompt,
# asked again with other candidates): the same prompt always gets the same greedy answer.
SCORE_CACHE = 16

StepScores = dict[str, float]
T = TypeVar("T")

log = logging.getLogger(__name__)


class CompletionModel(Protocol):
    """What the staged decision needs of a model (a replay fakes it from the log). `session`
    names the task, so its calls stay where its prompt prefix is cached."""

    @property
    def config(self) -> ModelsConfig: ...

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False, session: str = "",
    ) -> ModelCall: ...

    async def first_token_scores(
        self, role: str, prompt: str, candidates: Sequence[str], *, session: str = "",
    ) -> tuple[StepScores, ModelCall]: ...


def native_base(endpoint: str) -> str:
    """llama-server serves its native API beside the OpenAI one: `http://host:port/v1` → `http://host:port`."""
    return endpoint.rstrip("/").removesuffix("/v1")


class LlamaCompletions:
    """Calls llama-server's native endpoints by role."""

    def __init__(
        self, config: ModelsConfig, *, http: ModelHttp | None = None, pool: EndpointPool | None = None,
    ) -> None:
        self._config = config
        # The runtime passes the chat client's own pool and placements, so each model server
        # keeps one connection and each task one place.
        self._owns_http = http is None
        self._http = http or ModelHttp()
        self._pool = pool or EndpointPool(config)
        self._first_tokens: dict[tuple[str, str], int] = {}
        self._scores: OrderedDict[tuple[str, str], dict[int, float]] = OrderedDict()
        self._probed: set[str] = set()
        # Endpoints whose /tokenize is missing: prompts go to them as text.
        self._no_tokenizer: set[str] = set()

    @property
    def config(self) -> ModelsConfig:
        return self._config

    @property
    def pool(self) -> EndpointPool:
        return self._pool

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()

    # -- the two calls -----------------------------------------------------------------------

    async def first_token_scores(
        self, role: str, prompt: str, candidates: Sequence[str], *, session: str = "",
    ) -> tuple[StepScores, ModelCall]:
        """The log-probability of each candidate's first token right after `prompt`."""

        async def run(config: RoleConfig, lease: Lease) -> tuple[dict[int, float], ModelCall]:
            started = time.perf_counter()
            call = ModelCall(role=role, model=config.model, text="", latency_ms=0.0, first_token_ms=None,
                             endpoint=lease.endpoint, slot=lease.slot, moved=lease.moved)
            key = (lease.endpoint, prompt)
            if not session and key in self._scores:
                self._scores.move_to_end(key)
                return self._scores[key], call
            sent, units = await self._prompt(lease, prompt, call)
            body = {**config.extra_body, "prompt": sent, "n_predict": 1, "n_probs": TOP_TOKENS, "temperature": 0.0,
                    "cache_prompt": True, **_slot(lease)}
            answer = await self._post(config, lease.endpoint, "/completion", body, native=True)
            lease.ledger.reset(units)
            _read_answer(call, answer)
            call.latency_ms = (time.perf_counter() - started) * 1000
            probabilities = answer.get("completion_probabilities") or [{}]
            top = {int(item["id"]): float(item["logprob"]) for item in probabilities[0].get("top_logprobs", [])}
            if not session:
                self._scores[key] = top
                while len(self._scores) > SCORE_CACHE:
                    self._scores.popitem(last=False)
            return top, call

        top, call = await self._placed(role, session, run)
        config = self._config.require(role)
        scores = {name: top.get(await self._first_token(config, call.endpoint, name), FLOOR_LOGPROB)
                  for name in candidates}
        _observe(call)
        return scores, call

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False, session: str = "",
    ) -> ModelCall:
        """Streams one completion of `prompt` and returns the whole text with its figures.
        `copying`: the text should repeat what the prompt holds (a fact from a result), so no
        repetition penalty pushes the model off the words it should copy."""

        async def run(config: RoleConfig, lease: Lease) -> ModelCall:
            call = ModelCall(role=role, model=config.model, text="", latency_ms=0.0, first_token_ms=None,
                             endpoint=lease.endpoint, slot=lease.slot, moved=lease.moved)
            sent, units = await self._prompt(lease, prompt, call)
            body: dict[str, Any] = {
                **config.extra_body,
                "prompt": sent,
                "n_predict": max_tokens,
                "temperature": config.temperature if temperature is None else temperature,
                "stop": list(stop),
                "stream": True,
                "cache_prompt": True,
                "return_tokens": True,
                **_slot(lease),
            }
            if copying:
                body["repeat_penalty"] = 1.0
            if json_schema is not None:
                body["json_schema"] = json_schema
                body.update(config.json_extra_body)
            url = f"{native_base(lease.endpoint)}/completion"
            # What the slot held before is gone once the server starts on this prompt.
            lease.ledger.clear()
            await stream_call(self._http, url, body, config, call, on_token, fmt="native", max_tokens=max_tokens)
            lease.ledger.reset([*units, *await self._generated(lease.endpoint, call, units)])
            return call

        call = await self._placed(role, session, run)
        _observe(call)
        return call

    # -- placement and failover ------------------------------------------------------------

    async def _placed(self, role: str, session: str, run: Callable[[RoleConfig, Lease], Awaitable[T]]) -> T:
        """Runs one call on the session's endpoint; one that refuses it (or drops it before any
        token reached the caller) is marked down and the call goes to the next healthy one."""
        config = self._config.require(role)
        for endpoint in config.endpoints:
            await self._learn_slots(endpoint)
        tried: list[str] = []
        retried: set[str] = set()
        while True:
            lease = self._pool.acquire(role, session)
            try:
                result = await run(config, lease)
            except (NotReady, EndpointLost) as exc:
                if isinstance(exc, EndpointLost) and lease.endpoint not in retried:
                    # A kept-alive connection the server closed as it was reused: once more, on
                    # a new connection, before the endpoint counts as failed.
                    retried.add(lease.endpoint)
                    continue
                self._pool.mark_down(lease.endpoint, f"a call failed: {exc}")
                tried.append(lease.endpoint)
                if not [url for url in self._pool.healthy(role) if url not in tried]:
                    observe_model_error(role, "unreachable")
                    raise Unavailable(f"model server for role {role!r} at {', '.join(tried)} is unreachable: {exc}") from None
                continue
            finally:
                self._pool.release(lease)
            self._pool.mark_up(lease.endpoint)
            return result

    async def _learn_slots(self, endpoint: str) -> None:
        """How many slots the server has (llama-server's /props), once per endpoint; unknown
        (no slot pinned) where it does not say."""
        if endpoint in self._probed:
            return
        self._probed.add(endpoint)
        try:
            response = await self._http.get(f"{native_base(endpoint)}/props", timeout=5.0)
            slots = int(response.json().get("total_slots") or 0) if response.status == 200 else 0
        except (HttpFailure, ValueError, AttributeError, TypeError):
            slots = 0
        self._pool.set_slots(endpoint, slots)

    # -- tokens ----------------------------------------------------------------------------

    async def _prompt(self, lease: Lease, prompt: str, call: ModelCall) -> tuple[list[int] | str, list[Unit]]:
        """The prompt to send (tokens, or text where the server cannot tokenise) and the units
        the slot will hold once it has evaluated it."""
        match = lease.ledger.match(prompt)
        fresh = await self._tokenize(lease.endpoint, match.rest, special=not match.units)
        if fresh is None:
            lease.ledger.clear()
            return prompt, []
        units = [*match.units, *fresh]
        if "".join(unit.text for unit in units) != prompt:
            # Some text did not come back as whole units (bytes that never decode): send text.
            return prompt, []
        call.prefix_tokens = len(match.tokens)
        return [token for unit in units for token in unit.tokens], units

    async def _tokenize(self, endpoint: str, text: str, *, special: bool) -> list[Unit] | None:
        if not text:
            return []
        if endpoint in self._no_tokenizer:
            return None
        body = {"content": text, "add_special": special, "with_pieces": True}
        try:
            response = await self._http.post(f"{native_base(endpoint)}/tokenize", json_body=body, timeout=10.0)
        except ConnectFailed as exc:
            raise NotReady(str(exc)) from exc
        except HttpFailure as exc:
            raise EndpointLost(f"tokenizer at {endpoint} failed: {exc}") from exc
        if response.status == 503:
            raise NotReady(f"{endpoint} answered HTTP 503 (loading)")
        if response.status == 404:
            self._no_tokenizer.add(endpoint)  # not llama-server: text from now on
            return None
        try:
            pieces = response.json()["tokens"] if response.status == 200 else None
            if pieces is None or (pieces and not isinstance(pieces[0], dict)):
                raise ValueError("no pieces")
            return units_of_pieces(pieces)
        except (ValueError, KeyError, TypeError):
            return None  # this prompt goes as text

    async def _generated(self, endpoint: str, call: ModelCall, units: list[Unit]) -> list[Unit]:
        """What the slot holds of the generation: every sampled token but the last (sampled,
        never evaluated), with its text. None of it where the call was cut off (the server may
        have gone on) or the prompt went as text."""
        held = call.tokens[:-1]
        if not held or call.cut_off or not units:
            return []
        if call.stop_type == "eos":
            # The last token is the end of text, which writes nothing: the text is all the rest's.
            return [Unit(call.text, tuple(held))] if call.text else []
        try:
            response = await self._http.post(f"{native_base(endpoint)}/detokenize", json_body={"tokens": held}, timeout=10.0)
            text = response.json().get("content") if response.status == 200 else None
        except (HttpFailure, ValueError, AttributeError) as exc:
            log.info("no text for the generated tokens from %s (%r): the next prompt re-tokenises it", endpoint, exc)
            return []
        return [Unit(text, tuple(held))] if isinstance(text, str) and text else []

    async def _first_token(self, config: RoleConfig, endpoint: str, text: str) -> int:
        key = (endpoint, text)
        if key not in self._first_tokens:
            tokens = (await self._post(config, endpoint, "/tokenize", {"content": " " + text}))["tokens"]
            self._first_tokens[key] = int(tokens[0]) if tokens else -1
        return self._first_tokens[key]

    async def _post(self, config: RoleConfig, endpoint: str, path: str, body: dict[str, Any], *,
                    native: bool = False) -> dict[str, Any]:
        url = f"{native_base(endpoint)}{path}"
        try:
            response = await self._http.post(url, json_body=body, timeout=config.timeout_seconds)
        except ConnectFailed as exc:
            raise NotReady(str(exc)) from exc
        except TimedOut as exc:
            observe_model_error("chat", "timeout")
            raise Unavailable(f"model server at {url} did not answer within {config.timeout_seconds}s") from exc
        except HttpFailure as exc:
            raise EndpointLost(f"model server at {url} is unreachable: {exc}") from exc
        if response.status == 404 and native:
            raise NativeApiMissing(f"{url} does not exist: the model server has no llama-server native API")
        if response.status == 503:
            raise NotReady(f"{url} answered HTTP 503: {response.text[:200]}")
        if response.status != 200:
            raise Unavailable(f"model server at {url} answered HTTP {response.status}: {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result


def _slot(lease: Lease) -> dict[str, int]:
    return {"id_slot": lease.slot} if lease.slot >= 0 else {}


def _read_answer(call: ModelCall, answer: dict[str, Any]) -> None:
    """The figures of a non-streamed /completion answer."""
    timings = answer.get("timings") or {}
    call.prompt_tokens = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
    call.completion_tokens = int(timings.get("predicted_n", 0))
    call.cached_prompt_tokens = int(timings.get("cache_n", 0))
    call.finish_reason = "length" if answer.get("stop_type") == "limit" else "stop"
    call.timings = {key: timings[key] for key in ("prompt_n", "prompt_ms", "cache_n", "predicted_n", "predicted_ms")
                    if key in timings}


def _observe(call: ModelCall) -> None:
    observe_model_call(call.role, call.latency_ms, call.prompt_tokens, call.completion_tokens,
                       call.cached_prompt_tokens, call.first_token_ms)
