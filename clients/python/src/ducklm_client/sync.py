"""`Client`: the same API as `AsyncClient`, blocking. It runs an `AsyncClient` on a private event
loop, so it must not be used from inside a running event loop (use `AsyncClient` there).

    with Client() as client:
        print(client.chat("Hello!").reply)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine, Iterator, Sequence
from typing import Any, Self, TypeVar

from ducklm_client.client import CHAT_TIMEOUT, AsyncClient
from ducklm_client.config import Connection
from ducklm_client.models import (
    Approval,
    ChatResult,
    Event,
    Memory,
    MemoryPage,
    Proposal,
    Replay,
    SearchResult,
    Skill,
    SkillList,
    Task,
    TaskStatus,
    Validation,
)

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Blocking DuckLM client. Use as `with Client() as client:` or call `close()`."""

    def __init__(self, connection: Connection | None = None, **addresses: str) -> None:
        self._runner = asyncio.Runner()
        # The channels must belong to the loop that will run the calls: create the client there.
        self._client = self._runner.run(self._open(connection, addresses))

    @staticmethod
    async def _open(connection: Connection | None, addresses: dict[str, str]) -> AsyncClient:
        return AsyncClient(connection, **addresses)

    @property
    def connection(self) -> Connection:
        return self._client.connection

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def _iterate(self, stream: AsyncGenerator[T, None]) -> Iterator[T]:
        async def step() -> T:
            return await anext(stream)

        async def close() -> None:
            await stream.aclose()

        try:
            while True:
                try:
                    yield self._runner.run(step())
                except StopAsyncIteration:
                    return
        finally:
            # Stopping early cancels the call on the server too.
            self._runner.run(close())

    # Each method below is AsyncClient's, run to completion; see there for what it does.

    def chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float = CHAT_TIMEOUT
    ) -> ChatResult:
        return self._run(self._client.chat(message, task_id=task_id, skill=skill, timeout=timeout))

    def stream_chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float | None = CHAT_TIMEOUT
    ) -> Iterator[Event]:
        return self._iterate(self._client.stream_chat(message, task_id=task_id, skill=skill, timeout=timeout))

    def get_task(self, task_id: str) -> Task:
        return self._run(self._client.get_task(task_id))

    def list_tasks(self, *, status: TaskStatus | str | None = None, limit: int = 50) -> list[Task]:
        return self._run(self._client.list_tasks(status=status, limit=limit))

    def cancel_task(self, task_id: str, reason: str = "") -> Task:
        return self._run(self._client.cancel_task(task_id, reason))

    def list_events(self, task_id: str) -> list[Event]:
        return self._run(self._client.list_events(task_id))

    def stream_events(
        self, task_id: str, *, after_seq: int = 0, follow: bool = False, timeout: float | None = None
    ) -> Iterator[Event]:
        return self._iterate(
            self._client.stream_events(task_id, after_seq=after_seq, follow=follow, timeout=timeout)
        )

    def stream_until_rest(
        self, task_id: str, *, after_seq: int, timeout: float | None = CHAT_TIMEOUT
    ) -> Iterator[Event]:
        return self._iterate(self._client.stream_until_rest(task_id, after_seq=after_seq, timeout=timeout))

    def replay(self, task_id: str) -> Replay:
        return self._run(self._client.replay(task_id))

    def list_approvals(
        self, *, state: str | None = "pending", task_id: str = "", limit: int = 100
    ) -> list[Approval]:
        return self._run(self._client.list_approvals(state=state, task_id=task_id, limit=limit))

    def get_approval(self, approval_id: str) -> Approval:
        return self._run(self._client.get_approval(approval_id))

    def approve(
        self,
        approval_id: str,
        *,
        scope: str = "once",
        ttl_seconds: int = 0,
        reason: str = "",
        decided_by: str = "",
    ) -> Approval:
        """See `AsyncClient.approve` (needs the approver credential; `decided_by` is ignored)."""
        return self._run(
            self._client.approve(approval_id, scope=scope, ttl_seconds=ttl_seconds, reason=reason)
        )

    def deny(self, approval_id: str, *, reason: str = "", decided_by: str = "") -> Approval:
        return self._run(self._client.deny(approval_id, reason=reason))

    def list_skills(self) -> SkillList:
        return self._run(self._client.list_skills())

    def get_skill(self, name: str) -> Skill:
        return self._run(self._client.get_skill(name))

    def validate_skill(
        self, *, skill_md: str | None = None, folder_name: str = "", name: str | None = None, strict: bool = False
    ) -> Validation:
        return self._run(
            self._client.validate_skill(skill_md=skill_md, folder_name=folder_name, name=name, strict=strict)
        )

    def list_proposals(self, *, state: str | None = None, limit: int = 100) -> list[Proposal]:
        return self._run(self._client.list_proposals(state=state, limit=limit))

    def get_proposal(self, proposal_id: str) -> Proposal:
        return self._run(self._client.get_proposal(proposal_id))

    def promote_proposal(self, proposal_id: str, *, decided_by: str) -> Proposal:
        return self._run(self._client.promote_proposal(proposal_id, decided_by=decided_by))

    def reject_proposal(self, proposal_id: str, *, decided_by: str, reason: str = "") -> Proposal:
        return self._run(self._client.reject_proposal(proposal_id, decided_by=decided_by, reason=reason))

    def remember(
        self,
        text: str,
        *,
        kind: str = "note",
        tags: Sequence[str] = (),
        task_id: str = "",
        metadata: dict[str, Any] | None = None,
        collection: str = "",
        scope: str = "",
        project: str = "",
    ) -> Memory:
        return self._run(
            self._client.remember(
                text, kind=kind, tags=tags, task_id=task_id, metadata=metadata, collection=collection,
                scope=scope, project=project,
            )
        )

    def search(
        self,
        text: str,
        *,
        top_k: int = 5,
        kind: str = "",
        tags: Sequence[str] = (),
        task_id: str = "",
        score_threshold: float = 0.0,
        collection: str = "",
    ) -> SearchResult:
        return self._run(
            self._client.search(
                text,
                top_k=top_k,
                kind=kind,
                tags=tags,
                task_id=task_id,
                score_threshold=score_threshold,
                collection=collection,
            )
        )

    def get_memory(self, memory_id: str, *, collection: str = "") -> Memory:
        return self._run(self._client.get_memory(memory_id, collection=collection))

    def forget(self, memory_id: str, *, collection: str = "") -> int:
        return self._run(self._client.forget(memory_id, collection=collection))

    def list_memories(self, **conditions: Any) -> MemoryPage:
        """See AsyncClient.list_memories (scope, task_id, project, kind, tags, text, paging)."""
        return self._run(self._client.list_memories(**conditions))

    def promote_memory(self, memory_id: str, *, project: str = "", collection: str = "") -> Memory:
        return self._run(self._client.promote_memory(memory_id, project=project, collection=collection))

    def update_memory(self, memory_id: str, **changes: Any) -> Memory:
        return self._run(self._client.update_memory(memory_id, **changes))

    def forget_matching(self, **conditions: Any) -> int:
        return self._run(self._client.forget_matching(**conditions))

    def forget_scope(self, scope: str, *, confirm: str, task_id: str = "", project: str = "",
                     collection: str = "") -> int:
        return self._run(self._client.forget_scope(
            scope, confirm=confirm, task_id=task_id, project=project, collection=collection))

    def health(self, timeout: float = 5.0) -> dict[str, str]:
        return self._run(self._client.health(timeout))
