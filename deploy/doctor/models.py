"""Checks each chat-style role of models.yaml against its server, the way the runtime will use
it: the endpoint answers, it serves the model, a `json_schema`-constrained request comes back
valid, streaming works, the real context window is at least the configured one, `/tokenize` is
there, and `timings` are reported.

Each probe is one small request with a deadline; nothing here changes the server's state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from deploy.doctor.checks import Check
from services.runtime.models_config import RoleConfig

__all__ = ["PROBE_SCHEMA", "check_chat_role", "check_endpoint", "server_root"]

# Only enums, so a grammar-constrained reply is short and always complete; a server that ignores
# `response_format` answers the prompt below in prose instead.
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
    },
    "required": ["answer", "colour"],
    "additionalProperties": False,
}
_PROBE_PROMPT = "Write one friendly sentence about ducks."


def server_root(endpoint: str) -> str:
    """llama-server's own routes (/props, /tokenize) sit beside /v1, not under it."""
    base = endpoint.rstrip("/")
    return base.removesuffix("/v1")


def _headers(role: RoleConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {role.api_key}"} if role.api_key else {}


async def check_endpoint(
    http: httpx.AsyncClient, section: str, role: RoleConfig, models_file: Path
) -> tuple[list[Check], bool]:
    """The endpoint answers /v1/models and serves the configured model. Returns the checks and
    whether the endpoint answered at all (the other probes are pointless otherwise)."""
    url = f"{role.endpoint.rstrip('/')}/models"
    try:
        response = await http.get(url, headers=_headers(role))
    except httpx.HTTPError as exc:
        return [
            Check.failed(
                section, "endpoint", f"{url} does not answer ({type(exc).__name__})",
                f"start the model server (`make run` starts the ones under `servers:`) or fix "
                f"{section.replace('models.', 'roles.')}.endpoint in {models_file}",
            )
        ], False
    if response.status_code != 200:
        return [
            Check.failed(
                section, "endpoint", f"{url} answered HTTP {response.status_code}",
                "check the endpoint is an OpenAI-compatible base URL ending in /v1 (and api_key if it needs one)",
            )
        ], False
    checks = [Check.passed(section, "endpoint", f"{url} answers")]
    try:
        ids = [str(item["id"]) for item in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        ids = []
    checks.append(_model_check(section, role, ids, models_file))
    return checks, True


def _model_check(section: str, role: RoleConfig, ids: list[str], models_file: Path) -> Check:
    # llama-server names its one model after the file it loaded and answers to any name.
    if any(role.model == model_id or role.model in Path(model_id).name for model_id in ids):
        return Check.passed(section, "model", f"serves {role.model}")
    key = f"{section.replace('models.', 'roles.')}.model"
    if len(ids) == 1:
        return Check.warned(
            section, "model", f"serves only {ids[0]!r}, not {role.model!r}",
            f"set {key}: {ids[0]} in {models_file} (llama-server answers to any name; other servers refuse)",
        )
    listed = ", ".join(ids[:8]) or "none"
    return Check.failed(
        section, "model", f"{role.model!r} is not among the served models ({listed})",
        f"set {key} in {models_file} to one of the served models, or load {role.model} on the server",
    )


async def check_chat_role(
    http: httpx.AsyncClient, section: str, role: RoleConfig, models_file: Path
) -> list[Check]:
    """The probes for a role the agent loop or reflection calls (chat completions)."""
    return [
        await _json_schema_check(http, section, role),
        *await _streaming_checks(http, section, role),
        await _context_check(http, section, role, models_file),
        await _tokenize_check(http, section, role),
    ]


def _body(role: RoleConfig, **extra: Any) -> dict[str, Any]:
    return {
        **role.extra_body,
        "model": role.model,
        "messages": [{"role": "user", "content": _PROBE_PROMPT}],
        "temperature": 0.0,
        **extra,
    }


async def _json_schema_check(http: httpx.AsyncClient, section: str, role: RoleConfig) -> Check:
    fix = (
        "use a server that honours response_format json_schema (llama-server does; for others "
        "enable guided/structured decoding): the runtime relies on it for every step"
    )
    body = _body(
        role,
        max_tokens=48,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "doctor_probe", "schema": PROBE_SCHEMA, "strict": True},
        },
    )
    try:
        response = await http.post(f"{role.endpoint.rstrip('/')}/chat/completions", json=body, headers=_headers(role))
    except httpx.HTTPError as exc:
        return Check.failed(section, "json_schema", f"the constrained request failed ({type(exc).__name__})", fix)
    if response.status_code != 200:
        return Check.failed(
            section, "json_schema", f"the constrained request got HTTP {response.status_code}: {response.text[:120]}", fix
        )
    try:
        text = str(response.json()["choices"][0]["message"]["content"] or "")
    except (ValueError, KeyError, IndexError, TypeError):
        return Check.failed(section, "json_schema", "the reply is not a chat completion", fix)
    try:
        jsonschema.validate(json.loads(text), PROBE_SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return Check.failed(section, "json_schema", f"the reply ignores the schema: {text[:80]!r}", fix)
    return Check.passed(section, "json_schema", "a schema-constrained reply came back valid")


async def _streaming_checks(http: httpx.AsyncClient, section: str, role: RoleConfig) -> list[Check]:
    """One streamed request shows both that streaming works and whether `timings` come with it."""
    body = _body(role, max_tokens=8, stream=True, stream_options={"include_usage": True})
    pieces: list[str] = []
    timings: dict[str, Any] = {}
    done = False
    try:
        async with http.stream(
            "POST", f"{role.endpoint.rstrip('/')}/chat/completions", json=body, headers=_headers(role)
        ) as response:
            if response.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                chunk = json.loads(payload)
                for choice in chunk.get("choices") or []:
                    pieces.append((choice.get("delta") or {}).get("content") or "")
                timings = chunk.get("timings") or timings
    except (httpx.HTTPError, ValueError) as exc:
        return [
            Check.failed(
                section, "streaming", f"a streamed request failed ({exc})",
                "use a server that supports `stream: true` (server-sent events); replies stream to the user",
            ),
            Check.skipped(section, "timings", "no streamed reply to read them from"),
        ]
    if not done or not "".join(pieces):
        streaming = Check.failed(
            section, "streaming", "the stream carried no tokens" if done else "the stream ended without [DONE]",
            "use a server that streams chat completions as server-sent events ending in `data: [DONE]`",
        )
    else:
        streaming = Check.passed(section, "streaming", "tokens arrive as a stream")
    if "prompt_n" in timings or "predicted_n" in timings:
        timing = Check.passed(section, "timings", "llama-server timings are reported")
    else:
        timing = Check.warned(
            section, "timings", "the server reports no `timings`",
            "nothing to fix for tasks; prompt-cache figures (cache_n, prompt_ms) will be missing from metrics",
        )
    return [streaming, timing]


async def _context_check(http: httpx.AsyncClient, section: str, role: RoleConfig, models_file: Path) -> Check:
    configured = role.context_window
    key = f"{section.replace('models.', 'roles.')}.context_window"
    try:
        response = await http.get(f"{server_root(role.endpoint)}/props", headers=_headers(role))
        props = response.json() if response.status_code == 200 else {}
        real = int(props["default_generation_settings"]["n_ctx"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return Check.warned(
            section, "context window", "the server does not report its context window (/props)",
            f"make sure it holds at least {configured} tokens per request, as {key} says",
        )
    if real < configured:
        return Check.failed(
            section, "context window", f"the server holds {real} tokens per slot, {models_file.name} says {configured}",
            f"set {key}: {real} in {models_file}, or start the server with a larger --ctx-size "
            f"(llama-server splits it across --parallel slots)",
        )
    return Check.passed(section, "context window", f"{real} tokens per slot ≥ {configured} configured")


async def _tokenize_check(http: httpx.AsyncClient, section: str, role: RoleConfig) -> Check:
    try:
        response = await http.post(
            f"{server_root(role.endpoint)}/tokenize", json={"content": "ducks"}, headers=_headers(role)
        )
        tokens = response.json()["tokens"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        tokens = None
    if not isinstance(tokens, list) or not tokens:
        return Check.warned(
            section, "tokenize", "no /tokenize on this server",
            "nothing to fix: token counts are then estimated from characters, not counted exactly",
        )
    return Check.passed(section, "tokenize", "/tokenize counts tokens exactly")
