"""Memories in a Qdrant server or cluster, through qdrant-client: the backend for scale.

One Qdrant collection per memory collection. Its dimension and embedding model are kept in the
collection's own metadata (`ducklm_dimension`, `ducklm_embedding_model`), so every memory service
that shares the server checks them. Collections without that metadata are not ours; we never
list or touch them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from services.common.errors import FailedPrecondition, Unavailable
from services.memory.records import (
    KEYWORD_FIELDS,
    ORDER_FIELD,
    TEXT_FIELD,
    CollectionInfo,
    CollectionSpec,
    MemoryFilter,
    MemoryRecord,
    ScopeRef,
    ScoredRecord,
)

__all__ = ["QdrantStore"]

_MODEL_KEY = "ducklm_embedding_model"
_DIMENSION_KEY = "ducklm_dimension"

# The same search as the Edge backend: int8 copies for the walk, rescored with the originals.
_SEARCH_PARAMS = models.SearchParams(
    quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0)
)
_QUANTIZATION = models.ScalarQuantization(
    scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
)


def _match(pairs: Sequence[tuple[str, str]]) -> list[models.Condition]:
    return [models.FieldCondition(key=key, match=models.MatchValue(value=value)) for key, value in pairs]


def _qdrant_filter(memory_filter: MemoryFilter | None, scopes: Sequence[ScopeRef] = ()) -> models.Filter | None:
    """All of the filter's conditions, and (when `scopes` are given) any one of the scopes."""
    must: list[models.Condition] = []
    if memory_filter is not None:
        must = _match(memory_filter.conditions())
        if memory_filter.text:
            # Without a full-text index on the field, Qdrant matches text as a plain substring.
            must.append(models.FieldCondition(key=TEXT_FIELD, match=models.MatchText(text=memory_filter.folded_text())))
    should: list[models.Condition] = [models.Filter(must=_match(scope.conditions())) for scope in scopes]
    if not must and not should:
        return None
    return models.Filter(must=must or None, should=should or None)


class QdrantStore:
    """The server backend. Open with `await QdrantStore.open(url, api_key=...)`."""

    backend = "qdrant"

    def __init__(self, client: AsyncQdrantClient, url: str) -> None:
        self._client = client
        self._url = url
        # qdrant-client's in-process mode always searches exactly and has no payload indexes;
        # it warns when given either, so in that mode (tests) we leave them out.
        self._in_process = url == ":memory:"
        self._specs: dict[str, CollectionSpec] = {}
        self._create_lock = asyncio.Lock()
        # Forget counts then deletes; within this process those two steps do not interleave.
        self._write_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(cls, url: str, *, api_key: str = "", timeout_s: int = 10) -> QdrantStore:
        """Connects to `url` and checks it answers. ":memory:" is qdrant-client's in-process
        mode, for tests only: same client API, nothing kept, far too slow for real use."""
        if url == ":memory:":
            client = AsyncQdrantClient(location=":memory:")
        else:
            client = AsyncQdrantClient(
                url=url, api_key=api_key or None, timeout=timeout_s, check_compatibility=False
            )
        store = cls(client, url)
        try:
            async with store._server_errors():
                await client.get_collections()
        except BaseException:
            await client.close()
            raise
        return store

    async def spec(self, name: str) -> CollectionSpec | None:
        if name in self._specs:
            return self._specs[name]
        async with self._server_errors():
            if not await self._client.collection_exists(name):
                return None
            info = await self._client.get_collection(name)
        spec = _spec_from(name, info.config.metadata)
        if spec is None:
            raise FailedPrecondition(
                f"the Qdrant collection {name!r} at {self._url} was not made by DuckLM's memory "
                "service (it has no ducklm_* metadata); use another collection name",
                reason="FOREIGN_COLLECTION",
            )
        self._specs[name] = spec
        return spec

    async def create_collection(self, spec: CollectionSpec) -> CollectionSpec:
        async with self._create_lock:
            existing = await self.spec(spec.name)
            if existing is not None:
                return existing
            async with self._server_errors():
                await self._client.create_collection(
                    spec.name,
                    vectors_config=models.VectorParams(size=spec.dimension, distance=models.Distance.COSINE),
                    quantization_config=_QUANTIZATION,
                    metadata={_MODEL_KEY: spec.embedding_model, _DIMENSION_KEY: spec.dimension},
                )
                for key in () if self._in_process else KEYWORD_FIELDS:
                    await self._client.create_payload_index(
                        spec.name, key, models.PayloadSchemaType.KEYWORD, wait=True
                    )
                if not self._in_process:
                    # Listing orders by this field, which needs a range index on a server.
                    await self._client.create_payload_index(
                        spec.name, ORDER_FIELD, models.PayloadSchemaType.FLOAT, wait=True
                    )
            self._specs[spec.name] = spec
            return spec

    async def upsert(self, name: str, items: Sequence[tuple[MemoryRecord, Sequence[float]]]) -> None:
        points = [
            models.PointStruct(id=record.id, vector=list(vector), payload=record.payload())
            for record, vector in items
        ]
        async with self._server_errors():
            await self._client.upsert(name, points, wait=True)

    async def search(self, name: str, vector: Sequence[float], *, limit: int,
                     memory_filter: MemoryFilter | None = None,
                     score_threshold: float | None = None,
                     scopes: Sequence[ScopeRef] = ()) -> list[ScoredRecord]:
        if await self.spec(name) is None:
            return []
        async with self._server_errors():
            reply = await self._client.query_points(
                name,
                query=list(vector),
                limit=limit,
                query_filter=_qdrant_filter(memory_filter, scopes),
                score_threshold=score_threshold,
                with_payload=True,
                with_vectors=False,
                search_params=None if self._in_process else _SEARCH_PARAMS,
            )
        return [ScoredRecord(MemoryRecord.from_payload(p.id, p.payload, name), p.score) for p in reply.points]

    async def get(self, name: str, memory_id: str) -> MemoryRecord | None:
        if await self.spec(name) is None:
            return None
        async with self._server_errors():
            found = await self._client.retrieve(name, [memory_id], with_payload=True)
        return MemoryRecord.from_payload(found[0].id, found[0].payload, name) if found else None

    async def list_memories(self, name: str, memory_filter: MemoryFilter | None, *, offset: int,
                   limit: int) -> tuple[list[MemoryRecord], int]:
        """A page of the matching memories, newest first, and how many match in all."""
        if await self.spec(name) is None:
            return [], 0
        condition = _qdrant_filter(memory_filter)
        async with self._server_errors():
            total = (await self._client.count(name, count_filter=condition, exact=True)).count
            if offset >= total:
                return [], total
            # Ordered scrolls take no offset: read up to the page's end and drop what comes before.
            records, _ = await self._client.scroll(
                name, scroll_filter=condition, limit=offset + limit, with_payload=True, with_vectors=False,
                order_by=models.OrderBy(key=ORDER_FIELD, direction=models.Direction.DESC),
            )
        return [MemoryRecord.from_payload(r.id, r.payload, name) for r in records[offset:]], total

    async def set_payload(self, name: str, memory_id: str, payload: dict[str, object]) -> None:
        """Overwrites these payload fields of one memory (its vector stays)."""
        async with self._server_errors():
            await self._client.set_payload(name, payload, points=[memory_id], wait=True)

    async def delete_ids(self, name: str, memory_ids: Sequence[str]) -> int:
        if await self.spec(name) is None:
            return 0
        async with self._write_lock(name), self._server_errors():
            found = await self._client.retrieve(name, list(memory_ids), with_payload=False)
            if found:
                selector = models.PointIdsList(points=[point.id for point in found])
                await self._client.delete(name, selector, wait=True)
        return len(found)

    async def delete_matching(self, name: str, memory_filter: MemoryFilter) -> int:
        condition = _qdrant_filter(memory_filter)
        if condition is None:
            raise ValueError("delete_matching needs a non-empty filter")
        if await self.spec(name) is None:
            return 0
        async with self._write_lock(name), self._server_errors():
            count = (await self._client.count(name, count_filter=condition, exact=True)).count
            if count:
                await self._client.delete(name, models.FilterSelector(filter=condition), wait=True)
        return count

    async def collections(self) -> list[CollectionInfo]:
        infos = []
        async with self._server_errors():
            listed = await self._client.get_collections()
            for description in listed.collections:
                info = await self._client.get_collection(description.name)
                spec = _spec_from(description.name, info.config.metadata)
                if spec is None:
                    continue
                count = (await self._client.count(spec.name, exact=True)).count
                infos.append(CollectionInfo(spec, count, self.backend))
        return sorted(infos, key=lambda info: info.spec.name)

    async def settle(self) -> None:
        """Nothing to wait for: the server optimises on its own."""

    async def close(self) -> None:
        await self._client.close()

    def _write_lock(self, name: str) -> asyncio.Lock:
        return self._write_locks.setdefault(name, asyncio.Lock())

    @asynccontextmanager
    async def _server_errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise Unavailable(
                f"the Qdrant server at {self._url} failed: {exc}", reason="QDRANT_UNAVAILABLE"
            ) from exc


def _spec_from(name: str, metadata: dict[str, Any] | None) -> CollectionSpec | None:
    if not metadata or _MODEL_KEY not in metadata or _DIMENSION_KEY not in metadata:
        return None
    return CollectionSpec(name, int(metadata[_DIMENSION_KEY]), str(metadata[_MODEL_KEY]))
