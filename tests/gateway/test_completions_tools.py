"""The official `openai` client's function calling and structured output against DuckLM: the
client's `tools` are offered to the model as directive branches and come back as `tool_calls`
(finish_reason "tool_calls"); the follow-up `tool` messages continue the same task; and
`response_format` constrains the answer through the step schema the model must follow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayStack

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
async def client(gateway_stack: GatewayStack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{gateway_stack.url}/v1", api_key="unused") as ai:
        yield ai


def last_schema(gateway_stack: GatewayStack) -> str:
    return json.dumps(gateway_stack.model.requests[-1])


async def events_of(api: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    return list((await api.get(f"/v1/tasks/{task_id}/events")).json()["events"])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_round_trip_continues_the_same_task(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack, api: httpx.AsyncClient, stream: bool
) -> None:
    gateway_stack.model.script(
        [
            {"action": "call_tool", "tool": "get_weather", "arguments": {"city": "Paris"}},
            {"action": "respond", "message": "It is sunny in Paris."},
        ]
    )
    question: list[Any] = [{"role": "user", "content": f"What is the weather in Paris? ({stream})"}]
    if stream:
        stream_of = await client.chat.completions.create(model="ducklm", messages=question, tools=[WEATHER], stream=True)
        chunks = [chunk async for chunk in stream_of]
        calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
        finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
        assert finish == ["tool_calls"]
        assert len(calls) == 1
        assert calls[0].function is not None
        call_id, name, arguments = calls[0].id, calls[0].function.name, calls[0].function.arguments or ""
    else:
        completion = await client.chat.completions.create(
            model="ducklm", messages=question, tools=[WEATHER]
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None and choice.message.tool_calls
        call = choice.message.tool_calls[0]
        assert call.type == "function"
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "get_weather" and json.loads(arguments or "{}") == {"city": "Paris"}
    offered = last_schema(gateway_stack)
    assert '"const": "get_weather"' in offered and "The weather now in a city." in offered
    assert call_id and call_id.startswith("call_")
    task_id = call_id.split("_")[1]
    assert (await api.get(f"/v1/tasks/{task_id}")).json()["status"] == "completed"

    follow_up = await client.chat.completions.create(
        model="ducklm",
        messages=[
            *question,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "sunny", "celsius": 24}'},
        ],
        tools=[WEATHER],
    )
    assert follow_up.choices[0].finish_reason == "stop"
    assert follow_up.choices[0].message.content == "It is sunny in Paris."
    assert follow_up.model_extra and follow_up.model_extra["task_id"] == task_id, "the same task went on"
    assert '\\"celsius\\": 24' in json.dumps(gateway_stack.model.requests[-1]["messages"])
    events = await events_of(api, task_id)
    client_calls = [e for e in events if e["type"] == "tool_call" and e["data"].get("client")]
    assert len(client_calls) == 1
    assert not [e for e in events if e["type"] == "tool_result"], "DuckLM never ran the client's function"
    message = [e["data"]["text"] for e in events if e["type"] == "user_message"][-1]
    assert message.startswith("The function get_weather returned:")


async def test_tool_choice_none_offers_no_function(client: openai.AsyncOpenAI, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "No tools needed."}])
    talk: list[Any] = [{"role": "user", "content": "Just talk"}]
    completion = await client.chat.completions.create(
        model="ducklm",
        messages=talk,
        tools=[WEATHER],
        tool_choice="none",
    )
    assert completion.choices[0].message.content == "No tools needed."
    assert "get_weather" not in last_schema(gateway_stack)


async def test_a_tool_result_for_an_unknown_call_is_refused(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="tool_call_id"):
        await client.chat.completions.create(
            model="ducklm",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_made_up", "content": "42"},
            ],
        )


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "legs": {"type": "integer"}},
    "required": ["name", "legs"],
    "additionalProperties": False,
}


async def test_response_format_json_schema_constrains_the_answer(
    client: openai.AsyncOpenAI, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script(
        [
            # Prose where the schema wants an object: refused by the step schema, asked again.
            {"action": "respond", "message": "Bill is a duck with two legs."},
            {"action": "respond", "message": {"name": "Bill", "legs": 2}},
        ]
    )
    completion = await client.chat.completions.create(
        model="ducklm",
        messages=[{"role": "user", "content": "Describe Bill the duck"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"name": "Bill", "legs": 2}
    sent = gateway_stack.model.requests[-1]
    assert '"legs": {"type": "integer"}' in json.dumps(sent), "the model is constrained by the schema"


async def test_response_format_json_object(client: openai.AsyncOpenAI, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([{"action": "respond", "message": {"colours": ["red", "green"]}}])
    completion = await client.chat.completions.create(
        model="ducklm",
        messages=[{"role": "user", "content": "Two colours as JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"colours": ["red", "green"]}
