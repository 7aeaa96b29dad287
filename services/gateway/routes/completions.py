"""The OpenAI-compatible face: POST /v1/chat/completions and GET /v1/models, so the official
`openai` client (and tools built on it) can use DuckLM as a model.

A completion runs one DuckLM task turn. The messages become the task's user message (earlier
turns and system instructions folded in as a transcript), or, with the DuckLM extension field
`task_id`, the last user message continues that task. If the task stops to wait for a human
approval, the completion waits too (approve it in WebChat or via /v1/approvals) until the task
completes, fails, is cancelled, or `chat_timeout_seconds` passes. Streaming sends the reply as
it is written (`model_token` deltas), in chat.completion.chunk events ending with [DONE].

Every parameter is either honoured or refused with a 400 that names it: DuckLM runs its own
tools and sets sampling per model (config/models.yaml), so client `tools` and sampling options
are refused, never silently ignored. Once a task exists, no error answer uses a status the
official clients retry by themselves (408, 409, 429, 5xx) — a retry would run the task again —
and each carries `x-should-retry: false`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.backends import Backends
from services.gateway.disconnect import unless_disconnected
from services.gateway.errors import ApiError, BackendError, call, error_body
from services.gateway.inputs import read_body
from services.gateway.routes.tasks import MAX_MESSAGE_CHARS, backends_of, first_event, read_stream
from services.gateway.sse import EventStreamResponse, StreamGate, sse, sse_comment, with_heartbeats

__all__ = ["MODEL_ID", "routes", "task_message"]

MODEL_ID = "ducklm"
_CREATED = int(time.time())
_TYPE = common_pb2.EventType


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
    "tools": "DuckLM runs its own tools (config/tools.yaml); client-side functions are not offered to the model",
    "tool_choice": "DuckLM runs its own tools; client-side functions are not offered to the model",
    "functions": "DuckLM runs its own tools; client-side functions are not offered to the model",
    "function_call": "DuckLM runs its own tools; client-side functions are not offered to the model",
    "parallel_tool_calls": "DuckLM runs its own tools; client-side functions are not offered to the model",
    "response_format": "only {\"type\": \"text\"} is supported",
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
    # Accepted as what they are: an end-user id and metadata are not used by DuckLM.
    user: str | None = Field(default=None, max_length=256)
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None

    def refuse_unsupported(self) -> None:
        """A 400 naming the first parameter DuckLM would otherwise have to ignore."""
        if self.tools:
            raise ApiError(400, "INVALID_ARGUMENT", f"tools: {_REFUSED['tools']}")
        if self.tool_choice not in (None, "none", "auto"):
            raise ApiError(400, "INVALID_ARGUMENT", f"tool_choice: {_REFUSED['tool_choice']}")
        if self.response_format is not None and self.response_format.get("type") != "text":
            kind = self.response_format.get("type")
            raise ApiError(
                400, "INVALID_ARGUMENT", f"response_format: type {kind!r} is not supported; {_REFUSED['response_format']}"
            )
        for name in sorted(self.model_extra or {}):
            why = _REFUSED.get(name, _SAMPLING if name in _SAMPLING_PARAMETERS else "is not supported by DuckLM")
            raise ApiError(400, "INVALID_ARGUMENT", f"{name} {why}" if not name in _REFUSED else f"{name}: {why}")


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


@dataclass
class Turn:
    """Follows one task turn over gRPC, through approvals, until the task completes or fails.

    Keeps what a completion needs: the reply, its streamed deltas, token usage and the outcome.
    """

    backends: Backends
    task_id: str = ""
    status: str = "running"
    reply: str = ""
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_seq: int = 0
    waiting_on: str = ""
    first_seq: int = 0
    _deadline: float = 0.0
    _streamed: str = ""  # reply deltas of the model call in progress
    _streams: list[grpc.aio.UnaryStreamCall[Any, Any]] = field(default_factory=list)

    async def start(self, message: runtime_pb2.ChatRequest) -> common_pb2.Event | None:
        self._deadline = asyncio.get_running_loop().time() + self.backends.settings.chat_timeout_seconds
        stream = self.backends.runtime.StreamChat(
            message, timeout=self.backends.settings.chat_timeout_seconds
        )
        self._streams.append(stream)
        first = await first_event("runtime", stream)
        if first is not None:
            self.task_id, self.first_seq = first.task_id, first.seq
        return first

    async def deltas(self, first: common_pb2.Event | None) -> AsyncIterator[str | None]:
        """Reply text as it is written; None while nothing happens (for keep-alives). Ends when
        the task completes, fails or is cancelled, or at the deadline (status then unchanged)."""
        if first is not None:
            for piece in self._see(first):
                yield piece
        async for delta in self._follow(self._streams[0]):
            yield delta
        while self.status == "waiting_approval" and not self._expired():
            # The task waits for a human; follow it until it moves on and comes to rest again.
            stream = self.backends.runtime.StreamTaskEvents(
                runtime_pb2.StreamTaskEventsRequest(
                    task_id=self.task_id, after_seq=self.last_seq, follow=True
                )
            )
            self._streams.append(stream)
            async for delta in self._follow(stream):
                yield delta
            stream.cancel()

    async def _follow(self, stream: grpc.aio.UnaryStreamCall[Any, Any]) -> AsyncIterator[str | None]:
        async for event in with_heartbeats(read_stream(stream), self.backends.settings.heartbeat_seconds):
            if self._expired():
                return
            if event is None:
                yield None
                continue
            for delta in self._see(event):
                yield delta
            if self.status in ("completed", "failed", "cancelled"):
                return

    def _expired(self) -> bool:
        return asyncio.get_running_loop().time() > self._deadline

    def _see(self, event: common_pb2.Event) -> list[str]:
        self.task_id = self.task_id or event.task_id
        self.last_seq = max(self.last_seq, event.seq)
        data = json_format.MessageToDict(event.data)
        if event.type == _TYPE.EVENT_TYPE_MODEL_TOKEN:
            delta = str(data.get("reply", ""))
            self._streamed += delta
            return [delta] if delta else []
        if event.type == _TYPE.EVENT_TYPE_MODEL_CALL:
            usage = data.get("usage") or {}
            self.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self.completion_tokens += int(usage.get("completion_tokens", 0))
            return []
        if event.type == _TYPE.EVENT_TYPE_ASSISTANT_MESSAGE:
            text, streamed = str(data.get("text", "")), self._streamed
            self.reply, self._streamed = text, ""
            # The stored message is authoritative; send whatever the live deltas did not cover.
            if streamed and text.startswith(streamed):
                return [text[len(streamed) :]] if len(text) > len(streamed) else []
            return [text] if not streamed else [("\n\n" + text)]
        if event.type == _TYPE.EVENT_TYPE_DIRECTIVE and data.get("action") not in ("respond", "finish"):
            self._streamed = ""  # whatever streamed was not a reply
            return []
        if event.type == _TYPE.EVENT_TYPE_ERROR:
            self.error = str(data.get("message", "")) or self.error
            self._streamed = ""
            return []
        if event.type == _TYPE.EVENT_TYPE_APPROVAL_REQUESTED:
            self.waiting_on = str(data.get("approval_id", ""))
            return []
        if event.type == _TYPE.EVENT_TYPE_STATUS_CHANGED:
            self.status = str(data.get("to", self.status))
        return []

    def close(self) -> None:
        for stream in self._streams:
            stream.cancel()

    def failure(self) -> ApiError | None:
        """Why the turn gave no answer, as the error a client should see; None when it answered."""
        if self.status == "completed":
            return None
        # 422, not 409/5xx: the official clients retry those, and a retry would run the task again.
        if self.status == "cancelled":
            return ApiError(422, "CANCELLED", f"task {self.task_id} was cancelled")
        if self.status == "failed":
            return ApiError(
                422, "TASK_FAILED", f"task {self.task_id} failed: {self.error or 'no reason given'}"
            )
        return ApiError(
            422,
            "DEADLINE_EXCEEDED",
            f"task {self.task_id} did not come to rest in time ({self.status}); follow it at "
            f"/v1/tasks/{self.task_id}/events or continue it with task_id",
        )

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


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
                    "message": {"role": "assistant", "content": turn.reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": turn.usage(),
            "task_id": turn.task_id,
        }
    )


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


async def chat_completions(request: Request) -> Response:
    body = await read_body(request, CompletionBody)
    body.refuse_unsupported()
    message = runtime_pb2.ChatRequest(
        message=task_message(body.messages, bool(body.task_id)), task_id=body.task_id or ""
    )
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
