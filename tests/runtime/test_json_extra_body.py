"""`json_extra_body` in models.yaml reaches the model server only with the calls constrained by
a JSON schema (Gemma's whitespace ban must not reach its plain-text answers, which stop on a
newline), on both the chat endpoint and llama-server's native /completion."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.runtime.completion_client import LlamaCompletions
from services.runtime.model_client import ModelClient
from services.runtime.models_config import ModelsConfig, RoleConfig
from tests.http_stub import Handler, http_stub

BAN = {"logit_bias": [[107, False]]}
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


def _config(base: str) -> ModelsConfig:
    role = RoleConfig(endpoint=f"{base}/v1", model="m", extra_body={"repeat_penalty": 1.0}, json_extra_body=BAN)
    return ModelsConfig(roles={"chat": role})


def _server(bodies: list[dict[str, Any]]) -> Handler:
    """Answers like llama-server: one streamed piece, then the end."""

    async def handle(request: web.Request) -> web.Response:
        if not request.path.endswith("/completion") and not request.path.endswith("/completions"):
            return web.Response(status=404)  # no /props, no /tokenize: prompts go as text
        bodies.append(json.loads(await request.read()))
        if request.path == "/completion":
            lines = [{"content": '{"path":"a"}', "stop": False}, {"content": "", "stop": True, "stop_type": "eos"}]
        else:
            lines = [{"choices": [{"delta": {"content": '{"path":"a"}'}, "finish_reason": "stop"}]}]
        text = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        return web.Response(status=200, text=text, content_type="text/event-stream")

    return handle


async def test_completion_sends_it_only_under_a_schema() -> None:
    bodies: list[dict[str, Any]] = []
    async with http_stub(_server(bodies)) as base:
        client = LlamaCompletions(_config(base))
        try:
            await client.complete("chat", "Arguments:", json_schema=SCHEMA, max_tokens=8)
            await client.complete("chat", "Answer:", max_tokens=8, stop=["\n"])
        finally:
            await client.close()
    constrained, plain = bodies
    assert constrained["logit_bias"] == BAN["logit_bias"] and constrained["repeat_penalty"] == 1.0
    assert "logit_bias" not in plain and plain["repeat_penalty"] == 1.0


async def test_chat_sends_it_only_under_a_schema() -> None:
    bodies: list[dict[str, Any]] = []
    async with http_stub(_server(bodies)) as base:
        client = ModelClient(_config(base))
        try:
            await client.chat("chat", [{"role": "user", "content": "hi"}], json_schema=SCHEMA)
            await client.chat("chat", [{"role": "user", "content": "hi"}])
        finally:
            await client.close()
    constrained, plain = bodies
    assert constrained["logit_bias"] == BAN["logit_bias"]
    assert "logit_bias" not in plain
