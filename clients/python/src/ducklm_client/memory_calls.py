"""`MemoryCalls`: the memory service's part of `AsyncClient` (client.py) — remembering,
searching, listing, promoting, editing and forgetting memories. Each method builds the request,
calls through `Transport` and returns the typed result (models.py); nothing here holds state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ducklm.memory.v1 import memory_pb2
from google.protobuf import struct_pb2

from ducklm_client import convert
from ducklm_client.models import Memory, MemoryPage, SearchResult
from ducklm_client.transport import Transport

__all__ = ["MemoryCalls"]


class MemoryCalls:
    """Vector memory; `AsyncClient` sets `_transport`."""

    _transport: Transport

    async def remember(
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
        """Stores a text in vector memory: in `scope` ("task", "long_term" or "project"; by
        default the task's when `task_id` is given, else long-term). `EmbeddingsDisabledError`
        when the runtime has no embedding model configured."""
        extra = struct_pb2.Struct()
        extra.update(metadata or {})
        request = memory_pb2.RememberRequest(
            text=text, kind=kind, tags=list(tags), task_id=task_id, metadata=extra, collection=collection,
            scope=_scope(scope), project=project,
        )
        return convert.memory(await self._transport.unary("memory", "Remember", request))

    async def search(
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
        """The memories nearest `text`, best first."""
        request = memory_pb2.SearchRequest(
            text=text,
            top_k=top_k,
            score_threshold=score_threshold,
            collection=collection,
            filter=memory_pb2.MemoryFilter(task_id=task_id, kind=kind, tags=list(tags)),
        )
        return convert.scored_memory_list(await self._transport.unary("memory", "Search", request))

    async def get_memory(self, memory_id: str, *, collection: str = "") -> Memory:
        request = memory_pb2.GetMemoryRequest(memory_id=memory_id, collection=collection)
        return convert.memory(await self._transport.unary("memory", "GetMemory", request))

    async def forget(self, memory_id: str, *, collection: str = "") -> int:
        """Deletes one memory; returns how many were deleted (0 or 1)."""
        response = await self._transport.unary(
            "memory", "Forget", memory_pb2.ForgetRequest(memory_id=memory_id, collection=collection)
        )
        return int(response.deleted)

    async def list_memories(
        self,
        *,
        scope: str = "",
        task_id: str = "",
        project: str = "",
        kind: str = "",
        tags: Sequence[str] = (),
        text: str = "",
        page_size: int = 0,
        page_token: str = "",
        collection: str = "",
    ) -> MemoryPage:
        """Memories matching every condition given, newest first, one page at a time."""
        request = memory_pb2.ListMemoriesRequest(
            filter=memory_pb2.MemoryFilter(
                scope=_scope(scope), task_id=task_id, project=project, kind=kind, tags=list(tags), text=text
            ),
            page_size=page_size, page_token=page_token, collection=collection,
        )
        return convert.memory_page(await self._transport.unary("memory", "ListMemories", request))

    async def promote_memory(self, memory_id: str, *, project: str = "", collection: str = "") -> Memory:
        """Keeps a memory long-term (or, with `project`, in that project)."""
        request = memory_pb2.PromoteMemoryRequest(
            memory_id=memory_id, scope=_scope("project" if project else "long_term"), project=project,
            collection=collection,
        )
        return convert.memory(await self._transport.unary("memory", "PromoteMemory", request))

    async def update_memory(
        self, memory_id: str, *, text: str | None = None, kind: str | None = None,
        tags: Sequence[str] | None = None, collection: str = "",
    ) -> Memory:
        """Changes the fields given; a new text is embedded again."""
        mask = [name for name, value in (("text", text), ("kind", kind), ("tags", tags)) if value is not None]
        request = memory_pb2.UpdateMemoryRequest(
            memory_id=memory_id, update_mask=mask, text=text or "", kind=kind or "", tags=list(tags or ()),
            collection=collection,
        )
        return convert.memory(await self._transport.unary("memory", "UpdateMemory", request))

    async def forget_matching(
        self, *, scope: str = "", task_id: str = "", project: str = "", kind: str = "",
        tags: Sequence[str] = (), text: str = "", collection: str = "",
    ) -> int:
        """Deletes every memory matching all the conditions given (at least one)."""
        request = memory_pb2.ForgetRequest(
            filter=memory_pb2.MemoryFilter(
                scope=_scope(scope), task_id=task_id, project=project, kind=kind, tags=list(tags), text=text
            ),
            collection=collection,
        )
        return int((await self._transport.unary("memory", "Forget", request)).deleted)

    async def forget_scope(
        self, scope: str, *, confirm: str, task_id: str = "", project: str = "", collection: str = ""
    ) -> int:
        """Deletes every memory of one scope; `confirm` must name it ("long_term",
        "task:<task_id>" or "project:<name>")."""
        request = memory_pb2.ForgetRequest(
            scope=memory_pb2.ScopeRef(scope=_scope(scope), task_id=task_id, project=project),
            confirm=confirm, collection=collection,
        )
        return int((await self._transport.unary("memory", "Forget", request)).deleted)


def _scope(name: str) -> memory_pb2.MemoryScope:
    if not name:
        return memory_pb2.MEMORY_SCOPE_UNSPECIFIED
    if name not in convert.MEMORY_SCOPES:
        raise ValueError(f"unknown memory scope {name!r}: use task, long_term or project")
    return convert.MEMORY_SCOPES[name]
