"""The reply cap comes from the chat model (its max_reply_chars, or what its max_tokens leaves
room for), not a fixed 400 characters: the step schema the runtime sends the model says so."""

from __future__ import annotations

import json
import re

import httpx

from services.runtime.models_config import RoleConfig
from tests.gateway.conftest import GatewayStack


def test_the_cap_follows_the_models_settings() -> None:
    role = RoleConfig(endpoint="http://127.0.0.1:1/v1", model="m", max_tokens=1024)
    assert role.reply_chars() == (1024 - 100) * 3
    assert RoleConfig(endpoint="http://127.0.0.1:1/v1", model="m", max_reply_chars=5000).reply_chars() == 5000


async def test_the_step_schema_caps_replies_per_model(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "Short."}])
    response = await api.post("/v1/chat", json={"message": "How long may you answer?"})
    assert response.status_code == 200, response.text
    sent = json.dumps(gateway_stack.model.requests[-1])
    caps = {int(value) for value in re.findall(r'"maxLength": (\d+)', sent)}
    # The test stack's chat model has max_tokens 256 and no max_reply_chars.
    assert (256 - 100) * 3 in caps, caps
    assert 400 not in caps
