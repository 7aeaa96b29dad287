"""What the official `openai` client must never be surprised by: a parameter DuckLM does not
honour is a 400 naming it (client `tools` and `response_format` are honoured:
test_completions_tools.py); a cancelled task is not run again by the client's own retries (it
retries 408, 409, 429 and 5xx); a task opened by a completion is titled by its last user message."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


@pytest.fixture
async def retrying_client(gateway_stack: GatewayStack) -> AsyncIterator[openai.AsyncOpenAI]:
    """The client as people use it: its default retries on."""
    async with openai.AsyncOpenAI(base_url=f"{gateway_stack.url}/v1", api_key="unused") as ai:
        assert ai.max_retries >= 2
        yield ai


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces allowed"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"temperature": 0.3}, "temperature"),
        ({"max_tokens": 20}, "max_tokens"),
        ({"logprobs": True}, "logprobs"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
async def test_a_parameter_ducklm_does_not_honour_is_refused_by_name(
    retrying_client: openai.AsyncOpenAI, api: httpx.AsyncClient, extra: dict[str, Any], named: str
) -> None:
    before = len((await api.get("/v1/tasks", params={"page_size": 500})).json()["tasks"])
    with pytest.raises(openai.BadRequestError) as caught:
        await retrying_client.chat.completions.create(
            model="ducklm", messages=[{"role": "user", "content": "Hi"}], extra_body=extra
        )
    message = caught.value.response.json()["error"]["message"]
    assert message.startswith(named), message
    after = len((await api.get("/v1/tasks", params={"page_size": 500})).json()["tasks"])
    assert after == before, "a refused request opens no task"


async def test_accepted_parameters_still_work(
    retrying_client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "Plain text."}])
    completion = await retrying_client.chat.completions.create(
        model="ducklm",
        messages=[{"role": "user", "content": "Say it plainly"}],
        response_format={"type": "text"},
        tool_choice="auto",
        user="someone",
    )
    assert completion.choices[0].message.content == "Plain text."


async def test_a_cancelled_task_is_not_run_again_by_the_clients_retries(
    retrying_client: openai.AsyncOpenAI, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    marker = f"cancel-me-{uuid.uuid4().hex[:8]}"
    gateway_stack.model.script(
        [{"action": "call_tool", "tool": "make_dir", "arguments": {"path": marker}}] * 3
    )

    async def cancel_when_waiting() -> None:
        for _ in range(400):
            tasks = (await api.get("/v1/tasks", params={"status": "waiting_approval"})).json()["tasks"]
            task = next((task for task in tasks if marker in task["title"]), None)
            if task:
                response = await api.post(f"/v1/tasks/{task['id']}/cancel", json={"reason": "changed my mind"})
                assert response.status_code == 200, response.text
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the task never waited for its approval")

    canceller = asyncio.create_task(cancel_when_waiting())
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await retrying_client.chat.completions.create(
            model="ducklm", messages=[{"role": "user", "content": f"Make the folder {marker}"}]
        )
    await canceller
    assert "cancelled" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    tasks = (await api.get("/v1/tasks", params={"page_size": 500})).json()["tasks"]
    ran = [task for task in tasks if marker in task["title"]]
    assert len(ran) == 1, "the task ran once: the client did not retry it"
    assert ran[0]["status"] == "cancelled"
    assert not (gateway_stack.workspace / marker).exists()


async def test_a_completions_task_is_titled_by_its_last_user_message(
    retrying_client: openai.AsyncOpenAI, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "Quack."}])
    question = f"What sound does a duck make? {uuid.uuid4().hex[:6]}"
    completion = await retrying_client.chat.completions.create(
        model="ducklm",
        messages=[
            {"role": "system", "content": "You are terse.\nAnswer in one word."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": question},
        ],
    )
    task_id = completion.model_extra["task_id"]  # type: ignore[index]
    await wait_for_status(api, task_id, "completed")
    task = (await api.get(f"/v1/tasks/{task_id}")).json()
    assert task["title"].startswith(question)
    events = (await api.get(f"/v1/tasks/{task_id}/events")).json()["events"]
    message = next(event["data"]["text"] for event in events if event["type"] == "user_message")
    assert "You are terse." in message and "Assistant: Hi." in message, "the context is still passed on"
