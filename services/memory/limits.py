"""What the memory service accepts: sizes, names and scopes, checked before anything is embedded
or written. Every check raises InvalidArgument with a message saying what to change.

The gateway's REST bodies state the same sizes (services/gateway/routes/memory.py); a request
that passes there and fails here cannot happen unless the two drift, and the tests check both.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from services.common.errors import InvalidArgument
from services.memory.records import Scope, ScopeRef

__all__ = [
    "EMBED_CHARS",
    "MAX_METADATA_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TAGS",
    "MAX_TEXT_CHARS",
    "check_collection",
    "check_memory_id",
    "check_metadata",
    "check_name",
    "check_project",
    "check_scope_ref",
    "check_tags",
    "check_text",
]

# A memory is a short note, not a document: 4000 characters holds a long chat answer.
MAX_TEXT_CHARS = 4000
# The embedding model sees the first 1000 characters (about 250 tokens of English, the length
# sentence-transformers truncates all-MiniLM-L6-v2 inputs to); the whole text is stored.
EMBED_CHARS = 1000
MAX_NAME_CHARS = 200
MAX_TAGS = 50
MAX_METADATA_CHARS = 16_000
MAX_TASK_ID_CHARS = 128
# Collection names become folder names (Edge) and Qdrant collection names; project names are
# typed by people and shown in confirmations.
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_text(text: str, what: str = "text") -> str:
    if not text.strip():
        raise InvalidArgument(f"{what} is required: say what to remember")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument(
            f"{what} is {len(text)} characters; a memory holds at most {MAX_TEXT_CHARS}. "
            "Remember a shorter note (a summary), or split it into several memories"
        )
    return text


def check_name(value: str, what: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{what} is longer than {MAX_NAME_CHARS} characters")
    return value


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags")
    if any(not tag.strip() for tag in tags):
        raise InvalidArgument("tags must not be empty strings")
    for tag in tags:
        check_name(tag, "a tag")
    return tuple(dict.fromkeys(tags))


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(metadata, default=str)) > MAX_METADATA_CHARS:
        raise InvalidArgument(f"metadata is larger than {MAX_METADATA_CHARS} characters of JSON")
    return metadata


def check_project(project: str) -> str:
    if not _PROJECT_NAME.match(project):
        raise InvalidArgument(
            f"project {project!r} is not a valid name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return project


def check_scope_ref(scope: Scope, *, task_id: str = "", project: str = "") -> ScopeRef:
    """The scope with what it needs: a task scope names its task, a project scope its project."""
    if len(task_id) > MAX_TASK_ID_CHARS:
        raise InvalidArgument(f"task_id is longer than {MAX_TASK_ID_CHARS} characters")
    if scope == "task":
        if not task_id:
            raise InvalidArgument(
                "the task scope needs task_id (the conversation it belongs to); to keep a memory "
                "for every conversation use the long-term scope"
            )
        return ScopeRef("task", task_id=task_id)
    if scope == "project":
        return ScopeRef("project", project=check_project(project))
    if project:
        raise InvalidArgument("project is only for the project scope")
    return ScopeRef("long_term")


def check_collection(name: str) -> str:
    if not _COLLECTION_NAME.match(name):
        raise InvalidArgument(
            f"collection {name!r} is not a valid name: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_memory_id(memory_id: str) -> str:
    try:
        return str(uuid.UUID(memory_id))
    except ValueError:
        raise InvalidArgument(f"memory_id {memory_id!r} is not a memory id (a UUID)") from None
