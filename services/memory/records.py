"""The memory service's own types: a remembered text, a filter, a scored hit, a collection.

Both storage backends and the servicer speak these; none of them is a generated proto class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "KEYWORD_FIELDS",
    "ORDER_FIELD",
    "TEXT_FIELD",
    "CollectionInfo",
    "CollectionSpec",
    "MemoryFilter",
    "MemoryRecord",
    "Scope",
    "ScopeRef",
    "ScoredRecord",
]

# task: one conversation (task_id); long_term: the user's, recalled everywhere; project: named.
Scope = Literal["task", "long_term", "project"]


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
    scope: Scope = "task"
    project: str = ""
    update_time: datetime | None = None
    # The collection the record was read from or written to (not stored in the payload).
    collection: str = ""

    def payload(self) -> dict[str, Any]:
        """The point payload both backends store (the filterable fields at the top level)."""
        return {
            "text": self.text,
            "task_id": self.task_id,
            "kind": self.kind,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "create_time": self.create_time.isoformat(),
            "scope": self.scope,
            "project": self.project,
            "update_time": self.update_time.isoformat() if self.update_time else "",
            # Filters match text case-insensitively against this folded copy.
            TEXT_FIELD: self.text.casefold(),
            # Listing orders by this (a range index needs a number).
            ORDER_FIELD: self.create_time.timestamp(),
        }

    @classmethod
    def from_payload(cls, point_id: object, payload: dict[str, Any] | None, collection: str = "") -> MemoryRecord:
        payload = payload or {}
        task_id = str(payload.get("task_id", ""))
        scope = str(payload.get("scope") or ("task" if task_id else "long_term"))
        updated = str(payload.get("update_time") or "")
        return cls(
            id=str(point_id),
            text=str(payload.get("text", "")),
            create_time=datetime.fromisoformat(payload["create_time"]),
            task_id=task_id,
            kind=str(payload.get("kind", "")),
            tags=tuple(payload.get("tags") or ()),
            metadata=dict(payload.get("metadata") or {}),
            scope=scope if scope in ("task", "long_term", "project") else "task",  # type: ignore[arg-type]
            project=str(payload.get("project", "")),
            update_time=datetime.fromisoformat(updated) if updated else None,
            collection=collection,
        )


# Payload fields the backends index as keywords, because filters use them.
KEYWORD_FIELDS = ("task_id", "kind", "tags", "scope", "project")
TEXT_FIELD = "text_folded"
ORDER_FIELD = "create_ts"


@dataclass(frozen=True)
class ScopeRef:
    """One scope: `task_id` names the task of a "task" scope, `project` a "project" scope."""

    scope: Scope
    task_id: str = ""
    project: str = ""

    def conditions(self) -> list[tuple[str, str]]:
        """(payload field, value) pairs that together select this scope."""
        if self.scope == "task":
            return [("scope", "task"), ("task_id", self.task_id)]
        if self.scope == "project":
            return [("scope", "project"), ("project", self.project)]
        return [("scope", "long_term")]

    def label(self) -> str:
        """What a person types to confirm forgetting this whole scope."""
        if self.scope == "task":
            return f"task:{self.task_id}"
        if self.scope == "project":
            return f"project:{self.project}"
        return "long_term"


@dataclass(frozen=True)
class MemoryFilter:
    """Conditions; every set field must match (a memory must carry all `tags`; `text` is a
    case-insensitive substring of the memory's text)."""

    task_id: str = ""
    kind: str = ""
    tags: tuple[str, ...] = ()
    scope: Scope | None = None
    project: str = ""
    text: str = ""

    def is_empty(self) -> bool:
        return not (self.task_id or self.kind or self.tags or self.scope or self.project or self.text)

    def conditions(self) -> list[tuple[str, str]]:
        """(payload field, value) pairs that must all match; each backend builds its filter.
        The text condition is apart: `folded_text()`."""
        pairs = [("task_id", self.task_id), ("kind", self.kind), ("scope", self.scope or ""),
                 ("project", self.project)]
        return [(key, value) for key, value in pairs if value] + [("tags", tag) for tag in self.tags]

    def folded_text(self) -> str:
        return self.text.casefold()


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
