"""`AsyncClient`: DuckLM's gRPC API as typed async Python — chat, event streams, tasks, approvals
and health here; skills (skill_calls.py) and memory (memory_calls.py) mixed in. Each method
builds the request, calls through `Transport` (transport.py: channels, deadlines, retries,
paging, errors) and returns the typed result (models.py).

    async with AsyncClient() as client:
        result = await client.chat("What is in README.md?")
        print(result.reply)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Self

import grpc
from ducklm.approvals.v1 import approvals_pb2
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ducklm_client import convert
from ducklm_client.config import SERVICES, Connection
from ducklm_client.memory_calls import MemoryCalls
from ducklm_client.models import REST_STATUSES, Approval, ChatResult, Event, Replay, Task, TaskStatus
from ducklm_client.skill_calls import SkillCalls
from ducklm_client.transport import CALL_TIMEOUT, CHAT_TIMEOUT, Transport

__all__ = ["CALL_TIMEOUT", "CHAT_TIMEOUT", "AsyncClient"]


class AsyncClient(SkillCalls, MemoryCalls):
    """DuckLM over gRPC. Use as `async with AsyncClient() as client:` or call `close()`.

    `connection` defaults to `Connection.from_env()` (DUCKLM_RUNTIME_ADDRESS, ...); keyword
    addresses (`runtime="10.0.0.5:50051"`) override it."""

    def __init__(self, connection: Connection | None = None, **addresses: str) -> None:
        self.connection = (connection or Connection.from_env()).with_addresses(**addresses)
        self._transport = Transport(self.connection)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    # -- chat and tasks (runtime) ------------------------------------------------------------

    async def chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float = CHAT_TIMEOUT
    ) -> ChatResult:
        """Sends a message (continuing `task_id`, or opening a task) and waits until the task
        rests: completed, failed, cancelled, or waiting for an approval (then `reply` is "")."""
        request = runtime_pb2.ChatRequest(message=message, task_id=task_id, skill=skill)
        response = await self._transport.unary("runtime", "Chat", request, timeout)
        return ChatResult(task=convert.task(response.task), reply=response.reply)

    async def stream_chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float | None = CHAT_TIMEOUT
    ) -> AsyncGenerator[Event, None]:
        """Sends a message and yields the task's events from it on, live `model_token` events
        (seq 0; `payload.reply` is the next piece of the visible reply) included, until the
        task rests. The first event carries the task id."""
        request = runtime_pb2.ChatRequest(message=message, task_id=task_id, skill=skill)
        async for message_ in self._transport.stream("runtime", "StreamChat", request, timeout):
            yield convert.event(message_)

    async def get_task(self, task_id: str) -> Task:
        return convert.task(
            await self._transport.unary("runtime", "GetTask", runtime_pb2.GetTaskRequest(task_id=task_id))
        )

    async def list_tasks(self, *, status: TaskStatus | str | None = None, limit: int = 50) -> list[Task]:
        """Tasks, newest first, at most `limit`."""
        name = convert.task_status_name(status)
        return await self._transport.collect(
            "runtime", "ListTasks",
            lambda token, size: runtime_pb2.ListTasksRequest(page_size=size, page_token=token, status=name),
            lambda response: (convert.task(item) for item in response.tasks), limit=limit,
        )

    async def cancel_task(self, task_id: str, reason: str = "") -> Task:
        request = runtime_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        return convert.task(await self._transport.unary("runtime", "CancelTask", request))

    async def list_events(self, task_id: str) -> list[Event]:
        """Every stored event of a task, in order."""
        return await self._transport.collect(
            "runtime", "ListTaskEvents",
            lambda token, size: runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=size, page_token=token),
            lambda response: (convert.event(item) for item in response.events), page_size=1000,
        )

    async def stream_events(
        self, task_id: str, *, after_seq: int = 0, follow: bool = False, timeout: float | None = None
    ) -> AsyncGenerator[Event, None]:
        """The task's events after `after_seq`, then each new one as it happens. Ends when the
        task rests, unless `follow` (then it runs until you stop iterating)."""
        request = runtime_pb2.StreamTaskEventsRequest(task_id=task_id, after_seq=after_seq, follow=follow)
        async for message in self._transport.stream("runtime", "StreamTaskEvents", request, timeout):
            yield convert.event(message)

    async def stream_until_rest(
        self, task_id: str, *, after_seq: int, timeout: float | None = CHAT_TIMEOUT
    ) -> AsyncGenerator[Event, None]:
        """Events after `after_seq` until the task next comes to rest — e.g. after approving or
        denying, while the runtime picks the decision up and goes on."""
        async for event in self.stream_events(task_id, after_seq=after_seq, follow=True, timeout=timeout):
            yield event
            if isinstance(event.payload, common_pb2.StatusChanged) and event.payload.to in REST_STATUSES:
                return

    async def replay(self, task_id: str) -> Replay:
        """Re-runs the task's recorded model outputs through the loop (no model server) and
        says whether the same actions come out."""
        return convert.replay(
            await self._transport.unary(
                "runtime", "ReplayTask", runtime_pb2.ReplayTaskRequest(task_id=task_id), CHAT_TIMEOUT
            )
        )

    # -- approvals (served by the tools service) --------------------------------------------

    async def list_approvals(
        self, *, state: str | None = "pending", task_id: str = "", limit: int = 100
    ) -> list[Approval]:
        """Approvals, by default the pending ones; `state=None` lists all."""
        value = convert.enum_name("APPROVAL_STATE_", state, convert.APPROVAL_STATES)
        return await self._transport.collect(
            "approvals", "ListApprovals",
            lambda token, size: approvals_pb2.ListApprovalsRequest(
                page_size=size, page_token=token, state=value, task_id=task_id
            ),
            lambda response: (convert.approval(item) for item in response.approvals), limit=limit,
        )

    async def get_approval(self, approval_id: str) -> Approval:
        request = approvals_pb2.GetApprovalRequest(approval_id=approval_id)
        return convert.approval(await self._transport.unary("approvals", "GetApproval", request))

    async def approve(
        self,
        approval_id: str,
        *,
        scope: str = "once",
        ttl_seconds: int = 0,
        reason: str = "",
        decided_by: str = "",
    ) -> Approval:
        """Allows the exact action the approval names. `scope` "once" covers one run, "task"
        the rest of the task, "task_pattern" every run_command call of the approval's `pattern`
        for the rest of the task. Needs the approver credential (`Connection.approver_token`);
        the decision is recorded as that principal (`decided_by` is ignored, kept for older
        callers). The waiting task goes on by itself within about a second."""
        request = approvals_pb2.ApproveRequest(
            approval_id=approval_id,
            ttl_seconds=ttl_seconds,
            reason=reason,
            scope=convert.enum_name("APPROVAL_SCOPE_", scope, ("once", "task", "task_pattern")),
        )
        return convert.approval(await self._transport.unary("approvals", "Approve", request, as_approver=True))

    async def deny(self, approval_id: str, *, reason: str = "", decided_by: str = "") -> Approval:
        """Refuses the action; needs the approver credential (`decided_by` is ignored)."""
        request = approvals_pb2.DenyRequest(approval_id=approval_id, reason=reason)
        return convert.approval(await self._transport.unary("approvals", "Deny", request, as_approver=True))

    # -- health ------------------------------------------------------------------------------

    async def health(self, timeout: float = 5.0) -> dict[str, str]:
        """Each service's grpc.health.v1 status: "serving", "not_serving", or "unreachable: ..."."""
        statuses: dict[str, str] = {}
        for service in SERVICES:
            stub = health_pb2_grpc.HealthStub(self._transport.channel(service))
            try:
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout, metadata=self._transport.metadata
                )
                statuses[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
            except grpc.aio.AioRpcError as exc:
                statuses[service] = f"unreachable: {exc.code().name} {exc.details() or ''}".strip()
        return statuses
