"""The event vocabulary: one plain dataclass per event payload, mirroring the messages of the
`payload` oneof of `ducklm.common.v1.Event` field for field (a test keeps the two in step).

The store keeps each payload as a JSON object under the same field names (`to_data`); `parse`
reads one back, from today's writes and from older ones alike: a key an older runtime did not
write takes its default, a key this runtime no longer knows is dropped. This is the only module
that picks fields out of an event's data by key; everything else matches on these classes.
Nothing here touches the store, a service or a generated proto class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "ApprovalDecided",
    "ApprovalRequested",
    "AssistantMessage",
    "ClientFunction",
    "ContextCompacted",
    "Directive",
    "Error",
    "MemoryRecalled",
    "MemoryStored",
    "ModelCall",
    "ModelToken",
    "Payload",
    "RecalledMemory",
    "SkillUsed",
    "StatusChanged",
    "TaskCreated",
    "TaskResumed",
    "ToolCall",
    "ToolResult",
    "Unknown",
    "Usage",
    "UserMessage",
    "entry",
    "parse",
    "stored_key",
    "to_data",
]


@dataclass(frozen=True)
class TaskCreated:
    type: ClassVar[str] = "task_created"
    message: str = ""


@dataclass(frozen=True)
class StatusChanged:
    type: ClassVar[str] = "status_changed"
    # Stored as "from" (a Python keyword); the status words of states.TaskStatus.
    from_: str = ""
    to: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ClientFunction:
    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserMessage:
    type: ClassVar[str] = "user_message"
    text: str = ""
    skill: str | None = None
    # False: the turn reads and writes no memory; None (not written): it does.
    memory: bool | None = None
    client_functions: tuple[ClientFunction, ...] | None = None
    reply_schema: dict[str, Any] | None = None

    @property
    def wants_memory(self) -> bool:
        return self.memory is not False


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0


@dataclass(frozen=True)
class ModelCall:
    type: ClassVar[str] = "model_call"
    role: str = ""
    model: str = ""
    output: str = ""
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, Any] = field(default_factory=dict)
    cut_off: str | None = None
    # "compaction" for a call that is not a step; None for a step.
    purpose: str | None = None
    # The staged decision's stage; None for one JSON directive.
    stage: str | None = None


@dataclass(frozen=True)
class ModelToken:
    type: ClassVar[str] = "model_token"
    text: str = ""
    reply: str = ""


@dataclass(frozen=True)
class Directive:
    """One decision of the model; only the fields of its action are set."""

    type: ClassVar[str] = "directive"
    action: str = ""
    # A string, or the JSON value a turn's reply schema asked for.
    message: Any = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    skill: str | None = None
    path: str | None = None
    part: int | None = None
    text: str | None = None
    query: str | None = None
    raw: str = ""

    def fields(self) -> dict[str, Any]:
        """The action's own fields (what the model chose), without `action` and `raw`."""
        data = to_data(self)
        return {key: value for key, value in data.items() if key not in ("action", "raw")}


@dataclass(frozen=True)
class AssistantMessage:
    type: ClassVar[str] = "assistant_message"
    text: str = ""
    final: bool = False


@dataclass(frozen=True)
class ToolCall:
    type: ClassVar[str] = "tool_call"
    call_id: str = ""
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    # True: a function of the client, which runs it; the turn ends here.
    client: bool | None = None


@dataclass(frozen=True)
class ToolResult:
    type: ClassVar[str] = "tool_result"
    call_id: str = ""
    tool: str = ""
    ok: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    code: str | None = None
    denied: bool | None = None
    interrupted: bool | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class ApprovalRequested:
    type: ClassVar[str] = "approval_requested"
    approval_id: str = ""
    call_id: str = ""
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    action_hash: str = ""


@dataclass(frozen=True)
class ApprovalDecided:
    type: ClassVar[str] = "approval_decided"
    approval_id: str = ""
    decision: str = ""
    reason: str = ""
    decided_by: str | None = None


@dataclass(frozen=True)
class SkillUsed:
    """A skill's body (no `file`) or a part of one of its files, or why it could not be loaded."""

    type: ClassVar[str] = "skill_used"
    skill: str = ""
    body: str | None = None
    part: int | None = None
    parts: int | None = None
    allowed_tools: tuple[str, ...] | None = None
    pre_approved_tools: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    min_tool_calls: int | None = None
    error: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class RecalledMemory:
    id: str = ""
    text: str = ""
    score: float = 0.0
    scope: str = ""


@dataclass(frozen=True)
class MemoryRecalled:
    type: ClassVar[str] = "memory_recalled"
    query: str = ""
    automatic: bool = False
    memory_ids: tuple[str, ...] = ()
    memories: tuple[RecalledMemory, ...] | None = None
    error: str | None = None
    code: str | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class MemoryStored:
    type: ClassVar[str] = "memory_stored"
    text: str = ""
    kind: str = ""
    scope: str = ""
    memory_id: str | None = None
    error: str | None = None
    code: str | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class ContextCompacted:
    type: ClassVar[str] = "context_compacted"
    summary: str = ""
    up_to_seq: int = 0
    method: str = ""


@dataclass(frozen=True)
class Error:
    type: ClassVar[str] = "error"
    code: str = ""
    message: str = ""
    # The model output that could not be used (code "invalid_directive").
    output: str | None = None


@dataclass(frozen=True)
class TaskResumed:
    type: ClassVar[str] = "task_resumed"
    from_seq: int = 0


@dataclass(frozen=True)
class Unknown:
    """An event of a type this runtime does not know; its data as stored."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


Payload: TypeAlias = (
    TaskCreated | StatusChanged | UserMessage | ModelCall | ModelToken | Directive | AssistantMessage | ToolCall
    | ToolResult | ApprovalRequested | ApprovalDecided | SkillUsed | MemoryRecalled | MemoryStored
    | ContextCompacted | Error | TaskResumed
)

PAYLOADS: dict[str, type[Payload]] = {
    cls.type: cls
    for cls in (
        TaskCreated, StatusChanged, UserMessage, ModelCall, ModelToken, Directive, AssistantMessage, ToolCall,
        ToolResult, ApprovalRequested, ApprovalDecided, SkillUsed, MemoryRecalled, MemoryStored, ContextCompacted,
        Error, TaskResumed,
    )
}

# Dataclass field -> stored key, where a key is not a valid Python name.
_KEYS = {"from_": "from"}


def stored_key(name: str) -> str:
    """The key a dataclass field is stored (and named in the proto) under."""
    return _KEYS.get(name, name)


def _tuple_of(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: tuple(read(item) for item in value or ())


def _nested(cls: type[Any]) -> Callable[[Any], Any]:
    return lambda value: _build(cls, value if isinstance(value, Mapping) else {})


# How a stored value becomes a field's value, where it is not taken as it is.
_READERS: dict[tuple[type[Any], str], Callable[[Any], Any]] = {
    (UserMessage, "client_functions"): _tuple_of(_nested(ClientFunction)),
    (ModelCall, "usage"): _nested(Usage),
    (SkillUsed, "allowed_tools"): _tuple_of(str),
    (SkillUsed, "pre_approved_tools"): _tuple_of(str),
    (SkillUsed, "files"): _tuple_of(str),
    (MemoryRecalled, "memory_ids"): _tuple_of(str),
    (MemoryRecalled, "memories"): _tuple_of(_nested(RecalledMemory)),
}


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        key = _KEYS.get(item.name, item.name)
        if key not in data:
            continue
        value = data[key]
        reader = _READERS.get((cls, item.name))
        if value is None and item.default is not None:
            continue  # an older runtime wrote null where the field now has a plain default
        values[item.name] = reader(value) if reader is not None and value is not None else value
    return cls(**values)


def parse(event_type: str, data: Mapping[str, Any]) -> Payload | Unknown:
    """The typed payload of a stored event (its `data` as the store holds it)."""
    cls = PAYLOADS.get(event_type)
    if cls is None:
        return Unknown(type=event_type, data=dict(data))
    built: Payload = _build(cls, data)
    return built


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _KEYS.get(item.name, item.name): _plain(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if getattr(value, item.name) is not None
        }
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def to_data(payload: Payload | Unknown) -> dict[str, Any]:
    """The payload as the store keeps it: a JSON object, fields that are None left out."""
    if isinstance(payload, Unknown):
        return dict(payload.data)
    data: dict[str, Any] = _plain(payload)
    return data


def entry(payload: Payload) -> tuple[str, dict[str, Any]]:
    """(type, data) for the store's `append_event(task_id, type, data)`."""
    return payload.type, to_data(payload)
