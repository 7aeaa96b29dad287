"""What the memory service does: remember, search, get and forget texts, checked end to end.

Requests are validated, texts become vectors through the runtime, and a vector only reaches a
collection whose dimension and embedding model it matches. Anything that can fail (validation,
embedding, the dimension check) fails before the first write, so nothing is stored half-way.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.protos import utc_now
from services.memory.backend import MemoryBackend
from services.memory.embeddings import Embedder, Embeddings
from services.memory.records import (
    CollectionInfo,
    CollectionSpec,
    MemoryFilter,
    MemoryRecord,
    ScoredRecord,
)

__all__ = ["DEFAULT_TOP_K", "MAX_TOP_K", "Memories", "SearchResult"]

DEFAULT_TOP_K = 5
MAX_TOP_K = 100
# Collection names become folder names (Edge) and Qdrant collection names.
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class SearchResult:
    results: list[ScoredRecord]
    # Time spent getting the query's vector from the runtime (0 for a vector query).
    embedding_ms: float
    search_ms: float


class Memories:
    def __init__(self, backend: MemoryBackend, embedder: Embedder, *, default_collection: str) -> None:
        self._backend = backend
        self._embedder = embedder
        self._default_collection = default_collection

    async def remember(self, text: str, *, task_id: str = "", kind: str = "",
                       tags: Sequence[str] = (), metadata: dict[str, Any] | None = None,
                       collection: str = "") -> MemoryRecord:
        name = self._collection(collection)
        if not text.strip():
            raise InvalidArgument("text is required: say what to remember")
        record = MemoryRecord(
            id=str(uuid.uuid4()),
            text=text,
            create_time=utc_now(),
            task_id=task_id,
            kind=kind,
            tags=_tags(tags),
            metadata=dict(metadata or {}),
        )
        embeddings = await self._embedder.embed([text])
        spec = await self._backend.spec(name)
        if spec is None:
            spec = await self._backend.create_collection(
                CollectionSpec(name, embeddings.dimension, embeddings.model)
            )
        _check_compatible(spec, embeddings)
        await self._backend.upsert(name, [(record, embeddings.vectors[0])])
        return record

    async def search(self, query: str | Sequence[float], *, top_k: int = 0,
                     memory_filter: MemoryFilter | None = None, score_threshold: float = 0.0,
                     collection: str = "") -> SearchResult:
        """`query` is a text (embedded by the runtime) or a vector. A `score_threshold` of 0
        means none; a collection nobody wrote to yet has no results."""
        name = self._collection(collection)
        limit = _top_k(top_k)
        if memory_filter is not None:
            memory_filter = MemoryFilter(memory_filter.task_id, memory_filter.kind, _tags(memory_filter.tags))
        embedding_ms = 0.0
        if isinstance(query, str):
            if not query.strip():
                raise InvalidArgument("the query text is empty")
            started = time.perf_counter()
            embeddings = await self._embedder.embed([query])
            embedding_ms = (time.perf_counter() - started) * 1000
            spec = await self._backend.spec(name)
            if spec is not None:
                _check_compatible(spec, embeddings)
            vector: Sequence[float] = embeddings.vectors[0]
        else:
            vector = query
            if not vector:
                raise InvalidArgument("the query vector is empty")
            spec = await self._backend.spec(name)
            if spec is not None and len(vector) != spec.dimension:
                raise InvalidArgument(
                    f"the query vector has {len(vector)} values but collection {name!r} holds "
                    f"{spec.dimension}-dimensional vectors (model {spec.embedding_model!r})"
                )
        started = time.perf_counter()
        results = await self._backend.search(
            name, vector, limit=limit, memory_filter=memory_filter,
            score_threshold=score_threshold or None,
        )
        return SearchResult(results, embedding_ms, (time.perf_counter() - started) * 1000)

    async def get(self, memory_id: str, *, collection: str = "") -> MemoryRecord:
        name = self._collection(collection)
        record = await self._backend.get(name, _memory_id(memory_id))
        if record is None:
            raise NotFound(f"no memory {memory_id} in collection {name!r}")
        return record

    async def forget(self, target: str | MemoryFilter, *, collection: str = "") -> int:
        """Deletes the memory with this id, or every memory matching the filter; returns how
        many went. Forgetting what is not there deletes nothing and is not an error."""
        name = self._collection(collection)
        if isinstance(target, str):
            return await self._backend.delete_ids(name, [_memory_id(target)])
        if target.is_empty():
            raise InvalidArgument(
                "the filter is empty; set task_id, kind or tags (forgetting everything at once "
                "is not offered)"
            )
        target = MemoryFilter(target.task_id, target.kind, _tags(target.tags))
        return await self._backend.delete_matching(name, target)

    async def collections(self) -> list[CollectionInfo]:
        return await self._backend.collections()

    def _collection(self, name: str) -> str:
        name = name or self._default_collection
        if not _COLLECTION_NAME.match(name):
            raise InvalidArgument(
                f"collection {name!r} is not a valid name: use 1-64 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        return name


def _check_compatible(spec: CollectionSpec, embeddings: Embeddings) -> None:
    """Refuses vectors from another embedding model: mixing them would corrupt the collection
    (another dimension) or make its scores meaningless (another model, same dimension)."""
    fix = (
        "Go back to that model in config/models.yaml, or use a new collection "
        "(the request's `collection`, or DUCKLM_MEMORY_COLLECTION) and remember again"
    )
    if embeddings.dimension != spec.dimension:
        raise FailedPrecondition(
            f"embedding dimension mismatch: collection {spec.name!r} holds {spec.dimension}-dimensional "
            f"vectors from model {spec.embedding_model!r}, but the runtime's embedding model "
            f"{embeddings.model!r} gives {embeddings.dimension}. The call was refused and nothing "
            f"changed. {fix}.",
            reason="EMBEDDING_DIMENSION_MISMATCH",
        )
    if embeddings.model and spec.embedding_model and embeddings.model != spec.embedding_model:
        raise FailedPrecondition(
            f"embedding model mismatch: collection {spec.name!r} holds vectors from model "
            f"{spec.embedding_model!r}, but the runtime now embeds with {embeddings.model!r}; their "
            f"vectors are not comparable. The call was refused and nothing changed. {fix}.",
            reason="EMBEDDING_MODEL_MISMATCH",
        )


def _top_k(top_k: int) -> int:
    if top_k < 0 or top_k > MAX_TOP_K:
        raise InvalidArgument(f"top_k must be between 0 (meaning {DEFAULT_TOP_K}) and {MAX_TOP_K}")
    return top_k or DEFAULT_TOP_K


def _tags(tags: Sequence[str]) -> tuple[str, ...]:
    if any(not tag.strip() for tag in tags):
        raise InvalidArgument("tags must not be empty strings")
    return tuple(dict.fromkeys(tags))


def _memory_id(memory_id: str) -> str:
    try:
        return str(uuid.UUID(memory_id))
    except ValueError:
        raise InvalidArgument(f"memory_id {memory_id!r} is not a memory id (a UUID)") from None
