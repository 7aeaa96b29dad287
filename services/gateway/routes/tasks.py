"""Chat and tasks: POST /v1/chat (JSON or streamed), list / get / rename / delete / cancel tasks,
and a task's events (paged JSON, or Server-Sent Events that follow the task live)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.gateway.api import ApiRoute, Doc, backends_of, paging, query, unary
from services.gateway.backends import Backends
from services.gateway.convert import TASK_STATUSES, event_json, task_json
from services.gateway.disconnect import unless_disconnected
from services.gateway.errors import ApiError, BackendError, call
from services.gateway.event_streams import first_event, read_stream
from services.gateway.inputs import (
    INT64_MAX,
    MAX_MESSAGE_CHARS,
    Body,
    query_bool,
    query_choice,
    query_int,
    query_str,
    read_body,
)
from services.gateway.openapi_schemas import BOOL
from services.gateway.sse import gated_stream, sse, sse_comment, with_heartbeats

__all__ = ["event_stream_response", "routes", "wants_stream"]


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


def wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def event_message(event: common_pb2.Event) -> str:
    body = event_json(event)
    return sse(body, event=body["type"], event_id=event.seq or None)


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
    async def start() -> tuple[common_pb2.Event | None, grpc.aio.UnaryStreamCall[Any, Any]]:
        stream = open_stream()
        return await first_event(service, stream), stream

    return await gated_stream(
        request, start, lambda started: _event_body(backends_of(request), started[0], started[1], service)
    )


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
    status = query_choice(request, "status", {"all": 0, **TASK_STATUSES}, "all")
    message = runtime_pb2.ListTasksRequest(
        page_size=query_int(request, "page_size", 0, maximum=500),
        page_token=query_str(request, "page_token"),
        status=status,  # type: ignore[arg-type]
    )
    return await unary(request, "runtime", backends_of(request).runtime.ListTasks, message, _task_list)


def _task_list(reply: runtime_pb2.ListTasksResponse) -> dict[str, Any]:
    return {"tasks": [task_json(task) for task in reply.tasks], "next_page_token": reply.next_page_token}


async def get_task(request: Request) -> Response:
    message = runtime_pb2.GetTaskRequest(task_id=request.path_params["task_id"])
    return await unary(request, "runtime", backends_of(request).runtime.GetTask, message, task_json)


async def rename_task(request: Request) -> Response:
    body = await read_body(request, RenameBody)
    message = runtime_pb2.UpdateTaskRequest(task_id=request.path_params["task_id"], title=body.title)
    return await unary(request, "runtime", backends_of(request).runtime.UpdateTask, message, task_json)


async def delete_task(request: Request) -> Response:
    message = runtime_pb2.DeleteTaskRequest(task_id=request.path_params["task_id"])
    return await unary(request, "runtime", backends_of(request).runtime.DeleteTask, message, None)


async def cancel_task(request: Request) -> Response:
    body = await read_body(request, CancelBody, allow_empty=True)
    message = runtime_pb2.CancelTaskRequest(task_id=request.path_params["task_id"], reason=body.reason)
    return await unary(request, "runtime", backends_of(request).runtime.CancelTask, message, task_json)


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
    message = runtime_pb2.ListTaskEventsRequest(
        task_id=task_id,
        page_size=query_int(request, "page_size", 0, maximum=1000),
        page_token=query_str(request, "page_token"),
    )
    return await unary(request, "runtime", backends.runtime.ListTaskEvents, message, _event_list)


def _event_list(reply: runtime_pb2.ListTaskEventsResponse) -> dict[str, Any]:
    return {"events": [event_json(event) for event in reply.events], "next_page_token": reply.next_page_token}


routes = [
    ApiRoute("/v1/chat", "POST", chat, Doc(
        "Send a message: opens a task, or continues task_id. JSON answer when the task rests, or Server-Sent "
        "Events of the task's events with stream: true",
        "tasks", reply="ChatReply", errors=(404, 409, 413), body=ChatBody, stream=True,
    )),
    ApiRoute("/v1/tasks", "GET", list_tasks, Doc(
        "List tasks, newest first", "tasks", reply="TaskList",
        params=(*paging(), query("status", {"type": "string", "enum": ["all", *TASK_STATUSES]})),
    )),
    ApiRoute("/v1/tasks/{task_id}", "GET", get_task, Doc("Get a task", "tasks", reply="Task", errors=(404,))),
    ApiRoute("/v1/tasks/{task_id}", "PATCH", rename_task, Doc(
        "Rename a task (its title)", "tasks", reply="Task", errors=(404,), body=RenameBody,
    )),
    ApiRoute("/v1/tasks/{task_id}", "DELETE", delete_task, Doc(
        "Delete a task and its events (a task waiting for an approval is cancelled first; 409 while it is running)",
        "tasks", ok=204, errors=(404, 409),
    )),
    ApiRoute("/v1/tasks/{task_id}/cancel", "POST", cancel_task, Doc(
        "Cancel a task that is not final", "tasks", reply="Task", errors=(404, 409), body=CancelBody,
        body_required=False,
    )),
    ApiRoute("/v1/tasks/{task_id}/events", "GET", task_events, Doc(
        "A task's events: paged JSON, or Server-Sent Events with stream=true (or Accept: text/event-stream); "
        "after_seq (or Last-Event-ID) resumes, follow keeps the stream open after the task rests",
        "tasks", reply="EventList", errors=(404,), stream=True,
        params=(
            *paging(1000),
            query("stream", BOOL),
            query("after_seq", {"type": "integer", "minimum": 0, "maximum": INT64_MAX}),
            query("follow", BOOL),
        ),
    )),
]
