"""The one interface both storage backends offer, and the choice between them from settings.

EdgeStore (Qdrant Edge, in this process) is the default; QdrantStore (a Qdrant server) is for
scale. Both keep a collection's dimension and embedding model with the collection itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.memory.config import Settings
from services.memory.edge_store import EdgeStore
from services.memory.qdrant_store import QdrantStore
from services.memory.records import (
    CollectionInfo,
    CollectionSpec,
    MemoryFilter,
    MemoryRecord,
    ScopeRef,
    ScoredRecord,
)

__all__ = ["MemoryBackend", "open_backend"]


class MemoryBackend(Protocol):
    """Vector storage for memories. Vectors are checked against the spec before they get here."""

    backend: str

    async def spec(self, name: str) -> CollectionSpec | None:
        """The collection's spec, or None when it does not exist (yet)."""

    async def create_collection(self, spec: CollectionSpec) -> CollectionSpec:
        """Creates the collection, or returns the spec of the one that already exists."""

    async def upsert(self, name: str, items: Sequence[tuple[MemoryRecord, Sequence[float]]]) -> None: ...

    async def search(self, name: str, vector: Sequence[float], *, limit: int,
                     memory_filter: MemoryFilter | None = None,
                     score_threshold: float | None = None,
                     scopes: Sequence[ScopeRef] = ()) -> list[ScoredRecord]:
        """The nearest memories matching the filter and, when `scopes` are given, in one of them."""

    async def get(self, name: str, memory_id: str) -> MemoryRecord | None: ...

    async def list_memories(self, name: str, memory_filter: MemoryFilter | None, *, offset: int,
                   limit: int) -> tuple[list[MemoryRecord], int]:
        """A page of matching memories, newest first, and how many match in all."""

    async def set_payload(self, name: str, memory_id: str, payload: dict[str, object]) -> None:
        """Overwrites some payload fields of one memory; its vector stays."""

    async def delete_ids(self, name: str, memory_ids: Sequence[str]) -> int: ...

    async def delete_matching(self, name: str, memory_filter: MemoryFilter) -> int: ...

    async def collections(self) -> list[CollectionInfo]: ...

    async def settle(self) -> None:
        """Waits for background work (index building) to finish."""

    async def close(self) -> None: ...


async def open_backend(settings: Settings) -> MemoryBackend:
    if settings.backend == "qdrant":
        return await QdrantStore.open(
            settings.qdrant_url,
            api_key=settings.qdrant_api_key.get_secret_value(),
            timeout_s=settings.qdrant_timeout_s,
        )
    return await EdgeStore.open(settings.edge_path, flush_writes=settings.edge_flush_writes)
