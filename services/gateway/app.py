"""The gateway's Starlette app: routes that translate REST and WebChat into gRPC calls.

Built by `create_app(settings)`; the backends' channels open at start-up and close at shutdown.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from ducklm.runtime.v1 import runtime_pb2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.gateway.backends import Backends
from services.gateway.config import Settings
from services.gateway.convert import event_json, task_json
from services.gateway.errors import ApiError, error_response, grpc_error_response

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class BackendError(Exception):
    """A backend call failed; carries which service, for the error message."""

    def __init__(self, service: str, error: grpc.aio.AioRpcError) -> None:
        super().__init__(str(error))
        self.service = service
        self.error = error


async def call(service: str, pending: Awaitable[T]) -> T:
    try:
        return await pending
    except grpc.aio.AioRpcError as exc:
        raise BackendError(service, exc) from exc


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=32_000)
    task_id: str | None = Field(default=None, max_length=64)


async def read_body(request: Request, model: type[M]) -> M:
    """Parses the JSON body into `model`; a 400 with the first problem otherwise."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_ARGUMENT", "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, "INVALID_ARGUMENT", f"{where}: {first['msg']}") from None


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "INVALID_ARGUMENT", f"query parameter {name} must be an integer") from None


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


async def webchat(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def healthz(request: Request) -> Response:
    report = await _backends(request).health()
    healthy = all(status == "serving" for status in report.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "services": report}, status_code=200 if healthy else 503)


async def chat(request: Request) -> Response:
    body = await read_body(request, ChatBody)
    backends = _backends(request)
    reply = await call(
        "runtime",
        backends.runtime.Chat(
            runtime_pb2.ChatRequest(message=body.message, task_id=body.task_id or ""),
            timeout=backends.settings.chat_timeout_seconds,
        ),
    )
    return JSONResponse(
        {"task_id": reply.task.id, "status": task_json(reply.task)["status"], "reply": reply.reply, "task": task_json(reply.task)}
    )


async def get_task(request: Request) -> Response:
    backends = _backends(request)
    task = await call(
        "runtime",
        backends.runtime.GetTask(
            runtime_pb2.GetTaskRequest(task_id=request.path_params["task_id"]),
            timeout=backends.settings.call_timeout_seconds,
        ),
    )
    return JSONResponse(task_json(task))


async def task_events(request: Request) -> Response:
    backends = _backends(request)
    task_id = request.path_params["task_id"]
    if "text/event-stream" in request.headers.get("accept", ""):
        # Fail before the stream starts if the task does not exist, so the client gets a 404.
        await call(
            "runtime",
            backends.runtime.GetTask(runtime_pb2.GetTaskRequest(task_id=task_id), timeout=backends.settings.call_timeout_seconds),
        )
        after = _int_param(request, "after_seq", int(request.headers.get("last-event-id", "0") or 0))
        follow = request.query_params.get("follow", "false").lower() in ("1", "true", "yes")
        return StreamingResponse(
            _event_stream(backends, task_id, after, follow),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    reply = await call(
        "runtime",
        backends.runtime.ListTaskEvents(
            runtime_pb2.ListTaskEventsRequest(
                task_id=task_id,
                page_size=_int_param(request, "page_size", 0),
                page_token=request.query_params.get("page_token", ""),
            ),
            timeout=backends.settings.call_timeout_seconds,
        ),
    )
    return JSONResponse({"events": [event_json(event) for event in reply.events], "next_page_token": reply.next_page_token})


async def _event_stream(backends: Backends, task_id: str, after_seq: int, follow: bool) -> AsyncIterator[str]:
    """Server-Sent Events from StreamTaskEvents. If the client goes away, Starlette cancels this
    generator and the gRPC stream is cancelled with it; the task itself runs on."""
    stream = backends.runtime.StreamTaskEvents(
        runtime_pb2.StreamTaskEventsRequest(task_id=task_id, after_seq=after_seq, follow=follow)
    )
    try:
        async for event in stream:
            data = json.dumps(event_json(event))
            event_id = f"id: {event.seq}\n" if event.seq else ""
            yield f"{event_id}event: {event_json(event)['type']}\ndata: {data}\n\n"
    except grpc.aio.AioRpcError as exc:
        yield f"event: error\ndata: {json.dumps({'error': {'code': exc.code().name, 'message': exc.details()}})}\n\n"
    finally:
        stream.cancel()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return grpc_error_response(exc.error, exc.service)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    return error_response(exc.status_code, codes.get(exc.status_code, "HTTP_ERROR"), str(exc.detail))


def create_app(settings: Settings, backends: Backends | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backends = backends or Backends.connect(settings)
        try:
            yield
        finally:
            await app.state.backends.close()

    routes = [
        Route("/", webchat, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/chat", chat, methods=["POST"]),
        Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/events", task_events, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {ApiError: _api_error, BackendError: _backend_error, HTTPException: _http_error}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
