"""The memory service's own types: a remembered text, a filter, a scored hit, a collection.

Both storage backends and the servicer speak these; none of them is a generated proto class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "KEYWORD_FIELDS",
    "CollectionInfo",
    "CollectionSpec",
    "MemoryFilter",
    "MemoryRecord",
    "ScoredRecord",
]


@dataclass(frozen=True)
class MemoryRecord:
    """One remembered text and what was said about it. `id` is a UUID string."""

    id: str
    text: str
    create_time: datetime
    task_id: str = ""
    kind: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The point payload both backends store (the filterable fields at the top level)."""
        return {
            "text": self.text,
            "task_id": self.task_id,
            "kind": self.kind,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "create_time": self.create_time.isoformat(),
        }

    @classmethod
    def from_payload(cls, point_id: object, payload: dict[str, Any] | None) -> MemoryRecord:
        payload = payload or {}
        return cls(
            id=str(point_id),
            text=str(payload.get("text", "")),
            create_time=datetime.fromisoformat(payload["create_time"]),
            task_id=str(payload.get("task_id", "")),
            kind=str(payload.get("kind", "")),
            tags=tuple(payload.get("tags") or ()),
            metadata=dict(payload.get("metadata") or {}),
        )


# Payload fields the backends index as keywords, because filters use them.
KEYWORD_FIELDS = ("task_id", "kind", "tags")


@dataclass(frozen=True)
class MemoryFilter:
    """Metadata conditions; every set field must match (a memory must carry all `tags`)."""

    task_id: str = ""
    kind: str = ""
    tags: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.task_id or self.kind or self.tags)

    def conditions(self) -> list[tuple[str, str]]:
        """(payload field, value) pairs that must all match; each backend builds its filter."""
        pairs = [("task_id", self.task_id), ("kind", self.kind)]
        return [(key, value) for key, value in pairs if value] + [("tags", tag) for tag in self.tags]


@dataclass(frozen=True)
class ScoredRecord:
    record: MemoryRecord
    # Cosine similarity, -1..1.
    score: float


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection's vectors are: fixed when it is created, checked on every use."""

    name: str
    dimension: int
    embedding_model: str


@dataclass(frozen=True)
class CollectionInfo:
    spec: CollectionSpec
    count: int
    backend: str
