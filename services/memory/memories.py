"""What the memory service does: remember, recall, search, list, get, update, promote and forget
memories, each checked end to end.

Requests are validated (limits.py), texts become vectors through the runtime, and a vector only
reaches a collection of its own embedding model (placement.py). Anything that can fail
(validation, embedding, the model check) fails before the first write, so nothing is stored
half-way. This module decides nothing about who may write where: the runtime writes only task
memories, and only a person's request promotes one (the gateway and CLI say so to the user).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.common.errors import InvalidArgument, NotFound
from services.common.paging import next_page_token, page_bounds
from services.common.protos import utc_now
from services.memory.backend import MemoryBackend
from services.memory.embeddings import Embedder, Embeddings
from services.memory.limits import (
    EMBED_CHARS,
    check_memory_id,
    check_metadata,
    check_name,
    check_scope_ref,
    check_tags,
    check_text,
)
from services.memory.placement import Placement, check_compatible
from services.memory.records import (
    CollectionInfo,
    MemoryFilter,
    MemoryRecord,
    Scope,
    ScopeRef,
    ScoredRecord,
)

__all__ = ["DEFAULT_RECALL_K", "DEFAULT_TOP_K", "MAX_RECALL_K", "MAX_TOP_K", "Memories", "SearchResult"]

DEFAULT_TOP_K = 5
MAX_TOP_K = 100
DEFAULT_RECALL_K = 3
MAX_RECALL_K = 20
UPDATABLE = ("text", "kind", "tags", "metadata")


@dataclass(frozen=True)
class SearchResult:
    results: list[ScoredRecord]
    # Time spent getting the query's vector from the runtime (0 for a vector query).
    embedding_ms: float
    search_ms: float
    score_threshold: float = 0.0


@dataclass(frozen=True)
class Page:
    memories: list[MemoryRecord]
    next_page_token: str
    total: int


class Memories:
    def __init__(self, backend: MemoryBackend, embedder: Embedder, *, default_collection: str,
                 recall_threshold: float = 0.0) -> None:
        self._backend = backend
        self._embedder = embedder
        self._placement = Placement(backend, embedder, default=default_collection)
        self.recall_threshold = recall_threshold

    async def remember(self, text: str, *, scope: Scope = "task", task_id: str = "", project: str = "",
                       kind: str = "", tags: Sequence[str] = (), metadata: dict[str, Any] | None = None,
                       collection: str = "") -> MemoryRecord:
        check_text(text)
        where = check_scope_ref(scope, task_id=task_id, project=project)
        record = MemoryRecord(
            id=str(uuid.uuid4()),
            text=text,
            create_time=utc_now(),
            task_id=task_id,
            kind=check_name(kind, "kind"),
            tags=check_tags(tags),
            metadata=check_metadata(dict(metadata or {})),
            scope=where.scope,
            project=where.project,
        )
        embeddings = await self._embed(text)
        spec = await self._placement.for_embeddings(collection, embeddings, create=True)
        assert spec is not None
        await self._backend.upsert(spec.name, [(record, embeddings.vectors[0])])
        return replace(record, collection=spec.name)

    async def search(self, query: str | Sequence[float], *, top_k: int = 0,
                     memory_filter: MemoryFilter | None = None, score_threshold: float = 0.0,
                     scopes: Sequence[ScopeRef] = (), collection: str = "") -> SearchResult:
        """`query` is a text (embedded by the runtime) or a vector. A `score_threshold` of 0
        means none; a collection nobody wrote to yet has no results."""
        limit = _top_k(top_k, DEFAULT_TOP_K, MAX_TOP_K)
        memory_filter = _checked_filter(memory_filter)
        scopes = [check_scope_ref(s.scope, task_id=s.task_id, project=s.project) for s in scopes]
        embedding_ms = 0.0
        if isinstance(query, str):
            if not query.strip():
                raise InvalidArgument("the query text is empty")
            check_text(query, "the query text")
            started = time.perf_counter()
            embeddings = await self._embed(query)
            embedding_ms = (time.perf_counter() - started) * 1000
            spec = await self._placement.for_embeddings(collection, embeddings, create=False)
            vector: Sequence[float] = embeddings.vectors[0]
            name = spec.name if spec else ""
        else:
            vector = query
            if not vector:
                raise InvalidArgument("the query vector is empty")
            name = await self._placement.current(collection)
            spec = await self._backend.spec(name)
            if spec is not None and len(vector) != spec.dimension:
                raise InvalidArgument(
                    f"the query vector has {len(vector)} values but collection {name!r} holds "
                    f"{spec.dimension}-dimensional vectors (model {spec.embedding_model!r})"
                )
        started = time.perf_counter()
        results = await self._backend.search(
            name, vector, limit=limit, memory_filter=memory_filter,
            score_threshold=score_threshold or None, scopes=scopes,
        ) if spec is not None else []
        return SearchResult(results, embedding_ms, (time.perf_counter() - started) * 1000, score_threshold)

    async def recall(self, text: str, *, task_id: str, top_k: int = 0) -> SearchResult:
        """What a task's turn recalls on its own: the long-term scope and this task's memories,
        at or above the calibrated threshold. Never project memories, never other tasks'."""
        if not task_id:
            raise InvalidArgument("task_id is required: recall reads that task's memories and the long-term ones")
        scopes = [ScopeRef("long_term"), ScopeRef("task", task_id=task_id)]
        return await self.search(
            text[:EMBED_CHARS] if len(text) > EMBED_CHARS else text,
            top_k=_top_k(top_k, DEFAULT_RECALL_K, MAX_RECALL_K),
            score_threshold=self.recall_threshold, scopes=scopes,
        )

    async def get(self, memory_id: str, *, collection: str = "") -> MemoryRecord:
        name = await self._placement.current(collection)
        record = await self._backend.get(name, check_memory_id(memory_id))
        if record is None:
            raise NotFound(f"no memory {memory_id} in collection {name!r}")
        return record

    async def list_memories(self, memory_filter: MemoryFilter | None = None, *, page_size: int = 0,
                   page_token: str = "", collection: str = "") -> Page:
        offset, limit = page_bounds(page_size, page_token)
        name = await self._placement.current(collection)
        records, total = await self._backend.list_memories(name, _checked_filter(memory_filter), offset=offset, limit=limit)
        return Page(records, next_page_token(offset, limit, len(records)) if offset + len(records) < total else "", total)

    async def update(self, memory_id: str, update_mask: Sequence[str], *, text: str = "", kind: str = "",
                     tags: Sequence[str] = (), metadata: dict[str, Any] | None = None,
                     collection: str = "") -> MemoryRecord:
        """Changes the fields named in `update_mask`; a new text is embedded again, with the
        collection's own model (refused, nothing changed, if the runtime's model differs)."""
        unknown = sorted(set(update_mask) - set(UPDATABLE))
        if unknown or not update_mask:
            raise InvalidArgument(f"update_mask must name some of {', '.join(UPDATABLE)}"
                                  + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        record = await self.get(memory_id, collection=collection)
        changes: dict[str, Any] = {"update_time": utc_now()}
        if "text" in update_mask:
            changes["text"] = check_text(text)
        if "kind" in update_mask:
            changes["kind"] = check_name(kind, "kind")
        if "tags" in update_mask:
            changes["tags"] = check_tags(tags)
        if "metadata" in update_mask:
            changes["metadata"] = check_metadata(dict(metadata or {}))
        updated = replace(record, **changes)
        if "text" in update_mask and updated.text != record.text:
            embeddings = await self._embed(updated.text)
            spec = await self._backend.spec(record.collection)
            assert spec is not None
            check_compatible(spec, embeddings)
            await self._backend.upsert(record.collection, [(updated, embeddings.vectors[0])])
        else:
            await self._backend.set_payload(record.collection, record.id, updated.payload())
        return updated

    async def promote(self, memory_id: str, *, scope: Scope = "long_term", project: str = "",
                      collection: str = "") -> MemoryRecord:
        """Moves a memory to the long-term scope or a project. Promoting it where it already is
        changes nothing."""
        if scope == "task":
            raise InvalidArgument("promote to the long-term scope or to a project, not to a task")
        where = check_scope_ref(scope, project=project)
        record = await self.get(memory_id, collection=collection)
        if record.scope == where.scope and record.project == where.project:
            return record
        promoted = replace(record, scope=where.scope, project=where.project, update_time=utc_now())
        await self._backend.set_payload(record.collection, record.id, promoted.payload())
        return promoted

    async def forget(self, target: str | MemoryFilter | ScopeRef, *, confirm: str = "", collection: str = "") -> int:
        """Deletes the memory with this id, every memory matching the filter, or a whole scope
        (when `confirm` names it); returns how many went. Forgetting what is not there deletes
        nothing and is not an error."""
        name = await self._placement.current(collection)
        if isinstance(target, str):
            return await self._backend.delete_ids(name, [check_memory_id(target)])
        if isinstance(target, ScopeRef):
            where = check_scope_ref(target.scope, task_id=target.task_id, project=target.project)
            if confirm != where.label():
                raise InvalidArgument(
                    f"forgetting every memory in a scope needs confirm={where.label()!r}; "
                    f"it was {confirm!r}, so nothing was deleted"
                )
            return await self._backend.delete_matching(
                name, MemoryFilter(scope=where.scope, task_id=where.task_id, project=where.project)
            )
        checked = _checked_filter(target)
        if checked is None or checked.is_empty():
            raise InvalidArgument(
                "the filter is empty; set scope, task_id, project, kind, tags or text (to forget a whole "
                "scope, name it with `scope` and `confirm`)"
            )
        return await self._backend.delete_matching(name, checked)

    async def collections(self) -> list[CollectionInfo]:
        return await self._backend.collections()

    async def _embed(self, text: str) -> Embeddings:
        # The model sees the start of a long memory; the whole text is kept (limits.EMBED_CHARS).
        return await self._embedder.embed([text[:EMBED_CHARS]])


def _checked_filter(memory_filter: MemoryFilter | None) -> MemoryFilter | None:
    if memory_filter is None:
        return None
    if memory_filter.project:
        check_scope_ref("project", project=memory_filter.project)
    check_name(memory_filter.kind, "kind")
    check_name(memory_filter.text, "the filter's text")
    return replace(memory_filter, tags=check_tags(memory_filter.tags))


def _top_k(top_k: int, default: int, maximum: int) -> int:
    if top_k < 0 or top_k > maximum:
        raise InvalidArgument(f"top_k must be between 0 (meaning {default}) and {maximum}")
    return top_k or default
