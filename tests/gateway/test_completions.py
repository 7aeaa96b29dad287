"""The official `openai` Python client against /v1/chat/completions and /v1/models: DuckLM used
as a model, streaming and not, through approvals, with OpenAI-style errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


@pytest.fixture
async def client(gateway_stack: GatewayStack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway_stack.url}/v1", api_key="not-needed-on-loopback", max_retries=0
    ) as ai:
        yield ai


def reply(text: str) -> dict[str, str]:
    return {"action": "respond", "message": text}


async def test_a_completion_runs_a_task_and_answers(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([reply("Ducks are birds.")])
    completion = await client.chat.completions.create(
        model="ducklm", messages=[{"role": "user", "content": "What are ducks?"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "ducklm"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Ducks are birds."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    task_id = completion.model_extra["task_id"] if completion.model_extra else ""
    assert completion.id.startswith(f"chatcmpl-{task_id}")
    assert "What are ducks?" in json.dumps(gateway_stack.model.requests[-1]["messages"])


async def test_a_streamed_completion_arrives_in_chunks_ending_with_done(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    text = "Streaming through the openai client, piece by piece."
    gateway_stack.model.script([reply(text)])
    stream = await client.chat.completions.create(
        model="ducklm",
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish: list[str | None] = []
    usage = None
    ids = set()
    async for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish.append(choice.finish_reason)
    assert "".join(pieces) == text
    assert len(pieces) > 3
    assert finish[-1] == "stop"
    assert usage is not None and usage.completion_tokens > 0
    assert len(ids) == 1


async def test_the_raw_stream_ends_with_done(gateway_stack: GatewayStack, api: httpx.AsyncClient) -> None:
    gateway_stack.model.script([reply("raw")])
    body = {"model": "ducklm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with api.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "stop"


async def test_history_and_instructions_are_folded_into_the_task(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([reply("Your duck is Bill.")])
    await client.chat.completions.create(
        model="any-name-works",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "My duck is called Bill."},
            {"role": "assistant", "content": "Hello Bill!"},
            {"role": "user", "content": [{"type": "text", "text": "What is my duck called?"}]},
        ],
    )
    prompt = json.dumps(gateway_stack.model.requests[-1]["messages"])
    for fragment in (
        "Answer in one sentence.",
        "My duck is called Bill.",
        "Hello Bill!",
        "What is my duck called?",
    ):
        assert fragment in prompt


async def test_a_completion_can_continue_a_task(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([reply("Noted."), reply("Still here.")])
    first = await client.chat.completions.create(
        model="ducklm", messages=[{"role": "user", "content": "Remember me"}]
    )
    task_id = first.model_extra["task_id"] if first.model_extra else ""
    second = await client.chat.completions.create(
        model="ducklm",
        messages=[{"role": "user", "content": "Are you there?"}],
        extra_body={"task_id": task_id},
    )
    assert second.model_extra and second.model_extra["task_id"] == task_id
    assert second.choices[0].message.content == "Still here."


async def test_models_are_listed(client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == ["ducklm"]
    assert (await client.models.retrieve("ducklm")).owned_by == "ducklm"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-4")


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "assistant", "content": "I speak last"}],
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}],
        [{"role": "wizard", "content": "hi"}],
    ],
)
async def test_bad_requests_are_openai_style_400s(
    client: openai.AsyncOpenAI, messages: list[dict[str, object]]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="ducklm", messages=messages)  # type: ignore[arg-type]
    assert caught.value.status_code == 400


async def test_a_failed_task_is_an_error_not_an_answer(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script(["not a directive"] * 3)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="ducklm", messages=[{"role": "user", "content": "Fail please"}]
        )
    assert caught.value.status_code == 422, "not a 5xx: the client would retry and run the task again"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "failed" in caught.value.message
    gateway_stack.model.script(["not a directive"] * 3)
    stream = await client.chat.completions.create(
        model="ducklm", messages=[{"role": "user", "content": "Fail while streaming"}], stream=True
    )
    with pytest.raises(openai.APIError, match="failed"):
        async for _ in stream:
            pass


async def approve_when_asked(api: httpx.AsyncClient, marker: str) -> str:
    """Approves the pending approval of the task whose title contains `marker`; returns the task id."""
    for _ in range(200):
        tasks = (await api.get("/v1/tasks", params={"status": "waiting_approval"})).json()["tasks"]
        task = next((task for task in tasks if marker in task["title"]), None)
        if task:
            response = await api.post(f"/v1/approvals/{task['pending_approval_id']}/approve")
            assert response.status_code == 200, response.text
            return str(task["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("no task asked for approval")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_completion_waits_for_an_approval_then_answers(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack, api: httpx.AsyncClient, stream: bool
) -> None:
    marker = f"approval-{stream}"
    gateway_stack.model.script(
        [
            {
                "action": "call_tool",
                "tool": "write_file",
                "arguments": {"path": f"{marker}.txt", "content": "ok"},
            },
            reply("The file is written."),
        ]
    )
    messages = [{"role": "user", "content": f"Write the {marker} file"}]

    async def complete() -> str:
        create: Any = client.chat.completions.create
        if not stream:
            completion = await create(model="ducklm", messages=messages)
            return str(completion.choices[0].message.content or "")
        chunks = await create(model="ducklm", messages=messages, stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])

    answer = asyncio.create_task(complete())
    task_id = await approve_when_asked(api, marker)
    assert await asyncio.wait_for(answer, 30) == "The file is written."
    await wait_for_status(api, task_id, "completed")
    assert (gateway_stack.workspace / f"{marker}.txt").read_text() == "ok"
