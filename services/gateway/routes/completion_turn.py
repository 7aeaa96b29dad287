"""One DuckLM task turn followed for a chat completion: over gRPC, through approvals, until the
task completes, fails or is cancelled (or the completion's time runs out), keeping the reply,
its streamed deltas, token usage, client function calls and the outcome.

It reads events only; it never starts or changes a task (routes/completions.py does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2

from services.common.vocabulary import TURN_ENDING_ACTIONS
from services.gateway.backends import Backends
from services.gateway.errors import ApiError
from services.gateway.event_streams import first_event, read_stream
from services.gateway.routes.client_tools import tool_call
from services.gateway.sse import with_heartbeats

__all__ = ["Turn"]


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
    # Client functions the model called (the turn then ends with them), as OpenAI tool_calls.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
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
        kind = event.WhichOneof("payload")
        if kind == "model_token":
            delta = event.model_token.reply
            self._streamed += delta
            return [delta] if delta else []
        if kind == "model_call":
            self.prompt_tokens += event.model_call.usage.prompt_tokens
            self.completion_tokens += event.model_call.usage.completion_tokens
            return []
        if kind == "assistant_message":
            text, streamed = event.assistant_message.text, self._streamed
            self.reply, self._streamed = text, ""
            # The stored message is authoritative; send whatever the live deltas did not cover.
            if streamed and text.startswith(streamed):
                return [text[len(streamed) :]] if len(text) > len(streamed) else []
            return [text] if not streamed else [("\n\n" + text)]
        if kind == "directive" and event.directive.action not in TURN_ENDING_ACTIONS:
            self._streamed = ""  # whatever streamed was not a reply
            return []
        if kind == "error":
            self.error = event.error.message or self.error
            self._streamed = ""
            return []
        if kind == "tool_call" and event.tool_call.client:
            self.tool_calls.append(tool_call(self.task_id, event.tool_call, len(self.tool_calls)))
            return []
        if kind == "approval_requested":
            self.waiting_on = event.approval_requested.approval_id
            return []
        if kind == "status_changed":
            self.status = event.status_changed.to or self.status
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
