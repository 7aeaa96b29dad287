"""Chat and tasks: POST /v1/chat (JSON or streamed), list / get / rename / delete / cancel tasks,
and a task's events (paged JSON, or Server-Sent Events that follow the task live)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.vocabulary import MAX_MESSAGE_CHARS
from services.gateway.backends import Backends
from services.gateway.convert import TASK_STATUSES, event_json, task_json
from services.gateway.disconnect import unless_disconnected
from services.gateway.errors import ApiError, BackendError, call
from services.gateway.inputs import INT64_MAX, Body, query_bool, query_choice, query_int, query_str, read_body
from services.gateway.sse import EventStreamResponse, StreamGate, sse, sse_comment, with_heartbeats

__all__ = ["backends_of", "event_stream_response", "first_event", "read_stream", "routes", "wants_stream"]


class ChatBody(Body):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    task_id: str | None = Field(default=None, max_length=128)
    # Load this skill into the turn first (as if the model chose `use_skill`); empty: the model decides.
    # A skill name: lowercase letters, digits and single hyphens inside.
    skill: str = Field(default="", max_length=64, pattern=r"^([a-z0-9]+(-[a-z0-9]+)*)?$")
    # Answer with Server-Sent Events (the task's events as they happen) instead of one JSON.
    stream: bool = False


class RenameBody(Body):
    title: str = Field(min_length=1, max_length=200)


class CancelBody(Body):
    reason: str = Field(default="", max_length=2000)


def backends_of(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def read_stream(stream: grpc.aio.UnaryStreamCall[Any, Any]) -> AsyncIterator[common_pb2.Event]:
    """A gRPC response stream read with read() (a stream is read one way only, never mixed)."""
    while True:
        item = await stream.read()
        if item is grpc.aio.EOF:
            return
        # The grpc stubs type read() as `object` (EOF's type is private); past EOF it is an Event.
        yield cast(common_pb2.Event, item)


def event_message(event: common_pb2.Event) -> str:
    body = event_json(event)
    return sse(body, event=body["type"], event_id=event.seq or None)


async def first_event(service: str, stream: grpc.aio.UnaryStreamCall[Any, Any]) -> common_pb2.Event | None:
    """Waits for a stream's first event, so a bad request (unknown task, empty message) gets its
    proper HTTP status instead of a 200 followed by an error event. None: the stream was empty."""
    try:
        first = await call(service, stream.read())
    except BaseException:
        stream.cancel()
        raise
    return None if first is grpc.aio.EOF else cast(common_pb2.Event, first)


def _event_body(
    backends: Backends, first: common_pb2.Event | None, stream: grpc.aio.UnaryStreamCall[Any, Any], service: str
) -> AsyncIterator[str]:
    async def body() -> AsyncIterator[str]:
        try:
            if first is not None:
                yield event_message(first)
                async for event in with_heartbeats(read_stream(stream), backends.settings.heartbeat_seconds):
                    yield sse_comment("keep-alive") if event is None else event_message(event)
        except grpc.aio.AioRpcError as exc:
            yield sse(BackendError(service, exc).body(), event="error")
        finally:
            # Whether the stream ended, failed or the client went away: stop the gRPC call.
            stream.cancel()

    return body()


async def event_stream_response(
    request: Request, service: str, open_stream: Callable[[], grpc.aio.UnaryStreamCall[Any, Any]]
) -> Response:
    """The events of the stream `open_stream()` starts, as Server-Sent Events. The stream is only
    started within the gateway's cap on open streams (past it: a 503, and no call at all)."""
    gate: StreamGate = request.app.state.streams
    release = gate.enter()
    try:
        stream = open_stream()
        first = await first_event(service, stream)
    except BaseException:
        release()
        raise
    return EventStreamResponse(_event_body(backends_of(request), first, stream, service), release)


async def chat(request: Request) -> Response:
    body = await read_body(request, ChatBody)
    backends = backends_of(request)
    message = runtime_pb2.ChatRequest(message=body.message, task_id=body.task_id or "", skill=body.skill)
    if body.stream or wants_stream(request):
        return await event_stream_response(
            request,
            "runtime",
            lambda: backends.runtime.StreamChat(message, timeout=backends.settings.chat_timeout_seconds),
        )
    reply = await call(
        "runtime",
        unless_disconnected(
            request, backends.runtime.Chat(message, timeout=backends.settings.chat_timeout_seconds)
        ),
    )
    task = task_json(reply.task)
    return JSONResponse(
        {"task_id": reply.task.id, "status": task["status"], "reply": reply.reply, "task": task}
    )


async def list_tasks(request: Request) -> Response:
    backends = backends_of(request)
    status = query_choice(request, "status", {"all": 0, **TASK_STATUSES}, "all")
    reply = await call(
        "runtime",
        backends.runtime.ListTasks(
            runtime_pb2.ListTasksRequest(
                page_size=query_int(request, "page_size", 0, maximum=500),
                page_token=query_str(request, "page_token"),
                status=status,  # type: ignore[arg-type]
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(
        {"tasks": [task_json(task) for task in reply.tasks], "next_page_token": reply.next_page_token}
    )


async def get_task(request: Request) -> Response:
    backends = backends_of(request)
    task = await call(
        "runtime",
        backends.runtime.GetTask(
            runtime_pb2.GetTaskRequest(task_id=request.path_params["task_id"]), timeout=backends.timeout
        ),
    )
    return JSONResponse(task_json(task))


async def rename_task(request: Request) -> Response:
    body = await read_body(request, RenameBody)
    backends = backends_of(request)
    task = await call(
        "runtime",
        backends.runtime.UpdateTask(
            runtime_pb2.UpdateTaskRequest(task_id=request.path_params["task_id"], title=body.title),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(task_json(task))


async def delete_task(request: Request) -> Response:
    backends = backends_of(request)
    await call(
        "runtime",
        backends.runtime.DeleteTask(
            runtime_pb2.DeleteTaskRequest(task_id=request.path_params["task_id"]), timeout=backends.timeout
        ),
    )
    return Response(status_code=204)


async def cancel_task(request: Request) -> Response:
    body = await read_body(request, CancelBody, allow_empty=True)
    backends = backends_of(request)
    task = await call(
        "runtime",
        backends.runtime.CancelTask(
            runtime_pb2.CancelTaskRequest(task_id=request.path_params["task_id"], reason=body.reason),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(task_json(task))


def _last_event_id(request: Request) -> int:
    header = request.headers.get("last-event-id", "")
    if not header:
        return 0
    try:
        value = int(header)
    except ValueError:
        raise ApiError(
            400, "INVALID_ARGUMENT", "the Last-Event-ID header must be an event seq (an integer)"
        ) from None
    if not 0 <= value <= INT64_MAX:
        raise ApiError(400, "INVALID_ARGUMENT", "the Last-Event-ID header is out of range")
    return value


async def task_events(request: Request) -> Response:
    backends = backends_of(request)
    task_id = request.path_params["task_id"]
    if wants_stream(request) or query_bool(request, "stream"):
        # Resuming after a dropped connection: the browser sends the last seq it saw.
        after = query_int(request, "after_seq", _last_event_id(request), maximum=INT64_MAX)
        follow = query_bool(request, "follow")
        stream_request = runtime_pb2.StreamTaskEventsRequest(task_id=task_id, after_seq=after, follow=follow)
        return await event_stream_response(
            request, "runtime", lambda: backends.runtime.StreamTaskEvents(stream_request)
        )
    reply = await call(
        "runtime",
        backends.runtime.ListTaskEvents(
            runtime_pb2.ListTaskEventsRequest(
                task_id=task_id,
                page_size=query_int(request, "page_size", 0, maximum=1000),
                page_token=query_str(request, "page_token"),
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(
        {"events": [event_json(event) for event in reply.events], "next_page_token": reply.next_page_token}
    )


routes = [
    Route("/v1/chat", chat, methods=["POST"]),
    Route("/v1/tasks", list_tasks, methods=["GET"]),
    Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/v1/tasks/{task_id}", rename_task, methods=["PATCH"]),
    Route("/v1/tasks/{task_id}", delete_task, methods=["DELETE"]),
    Route("/v1/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
    Route("/v1/tasks/{task_id}/events", task_events, methods=["GET"]),
]
