"""The OpenAI-compatible face: POST /v1/chat/completions and GET /v1/models, so the official
`openai` client (and tools built on it) can use DuckLM as a model.

A completion runs one DuckLM task turn. The messages become the task's user message (earlier
turns and system instructions folded in as a transcript), or, with the DuckLM extension field
`task_id`, the last user message continues that task. If the task stops to wait for a human
approval, the completion waits too (approve it in WebChat or via /v1/approvals) until the task
completes, fails, is cancelled, or `chat_timeout_seconds` passes. Streaming sends the reply as
it is written (`model_token` deltas), in chat.completion.chunk events ending with [DONE].

Client `tools` are offered to the model and come back as `tool_calls`; `response_format`
constrains the answer (routes/client_tools.py). Every other parameter is either honoured or
refused with a 400 that names it: DuckLM sets sampling per model (config/models.yaml), so
sampling options are refused, never silently ignored. Once a task exists, no error answer uses a status the
official clients retry by themselves (408, 409, 429, 5xx) — a retry would run the task again —
and each carries `x-should-retry: false`.
OpenAI clients expect no state between calls, so a completion reads and writes no memory unless
the request opts in with the DuckLM extension field `memory: true` (then the turn recalls the
user's long-term memories and its own task's, and what the model remembers stays in that task).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.protos import to_struct
from services.common.vocabulary import MAX_MESSAGE_CHARS
from services.gateway.disconnect import unless_disconnected
from services.gateway.errors import ApiError, BackendError, call, error_body
from services.gateway.inputs import read_body
from services.gateway.routes.client_tools import (
    FunctionTool,
    client_functions,
    reply_schema,
    tool_results,
)
from services.gateway.routes.completion_turn import Turn
from services.gateway.routes.tasks import backends_of
from services.gateway.sse import EventStreamResponse, StreamGate, sse, sse_comment

__all__ = ["MODEL_ID", "routes", "task_message"]

MODEL_ID = "ducklm"
_CREATED = int(time.time())


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=50)
    text: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class CompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: (
        Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]
        | Annotated[list[ContentPart], Field(max_length=100)]
        | None
    ) = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise ApiError(
                    400,
                    "INVALID_ARGUMENT",
                    f"messages: content parts of type {part.type!r} are not supported",
                )
            parts.append(part.text)
        return "\n".join(parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


# Why each OpenAI parameter DuckLM does not honour is refused (the 400 says it).
_REFUSED = {
    "functions": "the legacy function-calling parameters are not supported; use tools",
    "function_call": "the legacy function-calling parameters are not supported; use tool_choice",
}
_SAMPLING = (
    "is set per model by DuckLM's runtime (config/models.yaml), not per request"
)


class CompletionBody(BaseModel):
    # Every field not declared here is refused by `refuse_unsupported` with a 400 naming it.
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[CompletionMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)
    # DuckLM extension: continue this task with the last user message.
    task_id: str | None = Field(default=None, max_length=128)
    # DuckLM extension: let this turn use memory (off by default: no state between calls).
    memory: bool = False
    # Accepted as what they are: an end-user id is not used by DuckLM.
    user: str | None = Field(default=None, max_length=256)
    response_format: dict[str, Any] | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=32)
    tool_choice: Any = None
    # At most one call per step either way: accepted, with nothing to change.
    parallel_tool_calls: bool | None = None

    def refuse_unsupported(self) -> None:
        """A 400 naming the first parameter DuckLM would otherwise have to ignore."""
        for name in sorted(self.model_extra or {}):
            why = _REFUSED.get(name, _SAMPLING if name in _SAMPLING_PARAMETERS else "is not supported by DuckLM")
            raise ApiError(400, "INVALID_ARGUMENT", f"{name}: {why}" if name in _REFUSED else f"{name} {why}")


_SAMPLING_PARAMETERS = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "frequency_penalty", "presence_penalty",
    "seed", "stop", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "verbosity",
}


def task_message(messages: list[CompletionMessage], continuing: bool) -> str:
    """The user message for the task: the last user message first (the task's title is its
    start), then the client's instructions and the earlier turns as context when the task is new
    (oldest turns dropped first if it grows too long)."""
    last = messages[-1]
    if last.role != "user":
        raise ApiError(400, "INVALID_ARGUMENT", "messages: the last message must have the role 'user'")
    question = last.text().strip()
    if not question:
        raise ApiError(400, "INVALID_ARGUMENT", "messages: the last user message is empty")
    if continuing or len(messages) == 1:
        return question[:MAX_MESSAGE_CHARS]
    instructions = [m.text().strip() for m in messages[:-1] if m.role in ("system", "developer")]
    transcript = [
        f"{m.role.capitalize()}: {m.text().strip()}"
        for m in messages[:-1]
        if m.role not in ("system", "developer")
    ]
    head = question + "\n\n"
    rules = "Instructions:\n" + "\n".join(filter(None, instructions)) + "\n\n" if any(instructions) else ""
    while transcript:
        middle = "Conversation so far:\n" + "\n".join(transcript) + "\n\n"
        if len(head) + len(rules) + len(middle) <= MAX_MESSAGE_CHARS:
            return (head + rules + middle).rstrip()
        transcript.pop(0)
    return (head + rules).rstrip()[:MAX_MESSAGE_CHARS]


def _completion_id(turn: Turn) -> str:
    return f"chatcmpl-{turn.task_id}-{turn.first_seq}"


async def _collect(turn: Turn, first: common_pb2.Event | None) -> None:
    async for _ in turn.deltas(first):
        pass


_NO_RETRY = {"x-should-retry": "false"}


def _not_retried(status: int, body: dict[str, Any]) -> JSONResponse:
    """An error answer for a task that exists: never a status the official clients retry."""
    retried = status in (408, 409, 429) or status >= 500
    return JSONResponse(body, status_code=422 if retried else status, headers=_NO_RETRY)


async def _answer(request: Request, turn: Turn, first: common_pb2.Event | None) -> Response:
    try:
        await call("runtime", unless_disconnected(request, _collect(turn, first)))
    except BackendError as exc:
        body = exc.body()
        body["error"]["message"] = f"task {turn.task_id}: {body['error']['message']}"
        return _not_retried(exc.status, body)
    finally:
        turn.close()
    problem = turn.failure()
    if problem is not None:
        return _not_retried(problem.status, error_body(problem.code, problem.message))
    return JSONResponse(
        {
            "id": _completion_id(turn),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_ID,
            "system_fingerprint": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": _message(turn),
                    "finish_reason": "tool_calls" if turn.tool_calls else "stop",
                    "logprobs": None,
                }
            ],
            "usage": turn.usage(),
            "task_id": turn.task_id,
        }
    )


def _message(turn: Turn) -> dict[str, Any]:
    if turn.tool_calls:
        calls = [{key: value for key, value in call.items() if key != "index"} for call in turn.tool_calls]
        return {"role": "assistant", "content": None, "tool_calls": calls}
    return {"role": "assistant", "content": turn.reply}


def _chunk(turn: Turn, delta: dict[str, Any], finish: str | None = None) -> str:
    return sse(
        {
            "id": _completion_id(turn),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL_ID,
            "system_fingerprint": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            "task_id": turn.task_id,
        }
    )


async def _chunks(turn: Turn, first: common_pb2.Event | None, include_usage: bool) -> AsyncIterator[str]:
    try:
        yield _chunk(turn, {"role": "assistant", "content": ""})
        async for delta in turn.deltas(first):
            if delta is None:
                yield sse_comment(f"task {turn.task_id} is {turn.status}")
            elif delta:
                yield _chunk(turn, {"content": delta})
        problem = turn.failure()
        if problem is not None:
            yield sse(error_body(problem.code, problem.message))
        elif turn.tool_calls:
            yield _chunk(turn, {"tool_calls": turn.tool_calls})
            yield _chunk(turn, {}, finish="tool_calls")
        else:
            yield _chunk(turn, {}, finish="stop")
            if include_usage:
                usage = {
                    "id": _completion_id(turn),
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": MODEL_ID,
                    "choices": [],
                    "usage": turn.usage(),
                }
                yield sse(usage)
    except grpc.aio.AioRpcError as exc:
        yield sse(BackendError("runtime", exc).body())
    finally:
        turn.close()
    yield sse("[DONE]")


def _chat_request(body: CompletionBody) -> runtime_pb2.ChatRequest:
    if body.messages[-1].role == "tool":
        # The results of the client's functions continue the task that called them.
        task_id, text = tool_results(body.messages)
        if body.task_id and body.task_id != task_id:
            raise ApiError(400, "INVALID_ARGUMENT", f"task_id {body.task_id} is not the task of these tool results")
    else:
        task_id, text = body.task_id or "", task_message(body.messages, bool(body.task_id))
    message = runtime_pb2.ChatRequest(
        message=text, task_id=task_id, client_functions=client_functions(body.tools, body.tool_choice),
        without_memory=not body.memory,
    )
    schema = reply_schema(body.response_format)
    if schema is not None:
        message.reply_schema.CopyFrom(to_struct(schema))
    return message


async def chat_completions(request: Request) -> Response:
    body = await read_body(request, CompletionBody)
    body.refuse_unsupported()
    message = _chat_request(body)
    turn = Turn(backends_of(request))
    if not body.stream:
        first = await turn.start(message)
        return await _answer(request, turn, first)
    gate: StreamGate = request.app.state.streams
    release = gate.enter()
    try:
        first = await turn.start(message)
    except BaseException:
        release()
        raise
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return EventStreamResponse(_chunks(turn, first, include_usage), release)


def _model() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": _CREATED, "owned_by": "ducklm"}


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [_model()]})


async def get_model(request: Request) -> Response:
    if request.path_params["model"] != MODEL_ID:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"model {request.path_params['model']!r} does not exist; DuckLM serves {MODEL_ID!r}",
        )
    return JSONResponse(_model())


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model}", get_model, methods=["GET"]),
]
