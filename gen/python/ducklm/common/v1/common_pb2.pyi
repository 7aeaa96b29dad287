import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_PENDING: _ClassVar[TaskStatus]
    TASK_STATUS_RUNNING: _ClassVar[TaskStatus]
    TASK_STATUS_WAITING_APPROVAL: _ClassVar[TaskStatus]
    TASK_STATUS_COMPLETED: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_TASK_CREATED: _ClassVar[EventType]
    EVENT_TYPE_STATUS_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_USER_MESSAGE: _ClassVar[EventType]
    EVENT_TYPE_MODEL_CALL: _ClassVar[EventType]
    EVENT_TYPE_MODEL_TOKEN: _ClassVar[EventType]
    EVENT_TYPE_DIRECTIVE: _ClassVar[EventType]
    EVENT_TYPE_ASSISTANT_MESSAGE: _ClassVar[EventType]
    EVENT_TYPE_TOOL_CALL: _ClassVar[EventType]
    EVENT_TYPE_TOOL_RESULT: _ClassVar[EventType]
    EVENT_TYPE_APPROVAL_REQUESTED: _ClassVar[EventType]
    EVENT_TYPE_APPROVAL_DECIDED: _ClassVar[EventType]
    EVENT_TYPE_SKILL_USED: _ClassVar[EventType]
    EVENT_TYPE_MEMORY_RECALLED: _ClassVar[EventType]
    EVENT_TYPE_MEMORY_STORED: _ClassVar[EventType]
    EVENT_TYPE_CONTEXT_COMPACTED: _ClassVar[EventType]
    EVENT_TYPE_ERROR: _ClassVar[EventType]
    EVENT_TYPE_TASK_RESUMED: _ClassVar[EventType]
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_PENDING: TaskStatus
TASK_STATUS_RUNNING: TaskStatus
TASK_STATUS_WAITING_APPROVAL: TaskStatus
TASK_STATUS_COMPLETED: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_TASK_CREATED: EventType
EVENT_TYPE_STATUS_CHANGED: EventType
EVENT_TYPE_USER_MESSAGE: EventType
EVENT_TYPE_MODEL_CALL: EventType
EVENT_TYPE_MODEL_TOKEN: EventType
EVENT_TYPE_DIRECTIVE: EventType
EVENT_TYPE_ASSISTANT_MESSAGE: EventType
EVENT_TYPE_TOOL_CALL: EventType
EVENT_TYPE_TOOL_RESULT: EventType
EVENT_TYPE_APPROVAL_REQUESTED: EventType
EVENT_TYPE_APPROVAL_DECIDED: EventType
EVENT_TYPE_SKILL_USED: EventType
EVENT_TYPE_MEMORY_RECALLED: EventType
EVENT_TYPE_MEMORY_STORED: EventType
EVENT_TYPE_CONTEXT_COMPACTED: EventType
EVENT_TYPE_ERROR: EventType
EVENT_TYPE_TASK_RESUMED: EventType

class Event(_message.Message):
    __slots__ = ("task_id", "seq", "type", "create_time", "data", "task_created", "status_changed", "user_message", "model_call", "model_token", "directive", "assistant_message", "tool_call", "tool_result", "approval_requested", "approval_decided", "skill_used", "memory_recalled", "memory_stored", "context_compacted", "error", "task_resumed")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TASK_CREATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    USER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_CALL_FIELD_NUMBER: _ClassVar[int]
    MODEL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_DECIDED_FIELD_NUMBER: _ClassVar[int]
    SKILL_USED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RECALLED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_STORED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_COMPACTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TASK_RESUMED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    type: EventType
    create_time: _timestamp_pb2.Timestamp
    data: _struct_pb2.Struct
    task_created: TaskCreated
    status_changed: StatusChanged
    user_message: UserMessage
    model_call: ModelCall
    model_token: ModelToken
    directive: Directive
    assistant_message: AssistantMessage
    tool_call: ToolCall
    tool_result: ToolResult
    approval_requested: ApprovalRequested
    approval_decided: ApprovalDecided
    skill_used: SkillUsed
    memory_recalled: MemoryRecalled
    memory_stored: MemoryStored
    context_compacted: ContextCompacted
    error: Error
    task_resumed: TaskResumed
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ..., type: _Optional[_Union[EventType, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., task_created: _Optional[_Union[TaskCreated, _Mapping]] = ..., status_changed: _Optional[_Union[StatusChanged, _Mapping]] = ..., user_message: _Optional[_Union[UserMessage, _Mapping]] = ..., model_call: _Optional[_Union[ModelCall, _Mapping]] = ..., model_token: _Optional[_Union[ModelToken, _Mapping]] = ..., directive: _Optional[_Union[Directive, _Mapping]] = ..., assistant_message: _Optional[_Union[AssistantMessage, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ..., approval_requested: _Optional[_Union[ApprovalRequested, _Mapping]] = ..., approval_decided: _Optional[_Union[ApprovalDecided, _Mapping]] = ..., skill_used: _Optional[_Union[SkillUsed, _Mapping]] = ..., memory_recalled: _Optional[_Union[MemoryRecalled, _Mapping]] = ..., memory_stored: _Optional[_Union[MemoryStored, _Mapping]] = ..., context_compacted: _Optional[_Union[ContextCompacted, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., task_resumed: _Optional[_Union[TaskResumed, _Mapping]] = ...) -> None: ...

class TaskCreated(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class StatusChanged(_message.Message):
    __slots__ = ("to", "reason")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    to: str
    reason: str
    def __init__(self, to: _Optional[str] = ..., reason: _Optional[str] = ..., **kwargs) -> None: ...

class FunctionSpec(_message.Message):
    __slots__ = ("name", "description", "parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UserMessage(_message.Message):
    __slots__ = ("text", "skill", "memory", "client_functions", "reply_schema")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    REPLY_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    text: str
    skill: str
    memory: bool
    client_functions: _containers.RepeatedCompositeFieldContainer[FunctionSpec]
    reply_schema: _struct_pb2.Struct
    def __init__(self, text: _Optional[str] = ..., skill: _Optional[str] = ..., memory: _Optional[bool] = ..., client_functions: _Optional[_Iterable[_Union[FunctionSpec, _Mapping]]] = ..., reply_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ModelCall(_message.Message):
    __slots__ = ("role", "model", "output", "latency_ms", "first_token_ms", "finish_reason", "usage", "timings", "cut_off", "purpose", "stage")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CUT_OFF_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    role: str
    model: str
    output: str
    latency_ms: float
    first_token_ms: float
    finish_reason: str
    usage: ModelUsage
    timings: _struct_pb2.Struct
    cut_off: str
    purpose: str
    stage: str
    def __init__(self, role: _Optional[str] = ..., model: _Optional[str] = ..., output: _Optional[str] = ..., latency_ms: _Optional[float] = ..., first_token_ms: _Optional[float] = ..., finish_reason: _Optional[str] = ..., usage: _Optional[_Union[ModelUsage, _Mapping]] = ..., timings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., cut_off: _Optional[str] = ..., purpose: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class ModelToken(_message.Message):
    __slots__ = ("text", "reply")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    text: str
    reply: str
    def __init__(self, text: _Optional[str] = ..., reply: _Optional[str] = ...) -> None: ...

class Directive(_message.Message):
    __slots__ = ("action", "message", "tool", "arguments", "skill", "path", "part", "text", "query", "raw")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    action: str
    message: _struct_pb2.Value
    tool: str
    arguments: _struct_pb2.Struct
    skill: str
    path: str
    part: int
    text: str
    query: str
    raw: str
    def __init__(self, action: _Optional[str] = ..., message: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., skill: _Optional[str] = ..., path: _Optional[str] = ..., part: _Optional[int] = ..., text: _Optional[str] = ..., query: _Optional[str] = ..., raw: _Optional[str] = ...) -> None: ...

class AssistantMessage(_message.Message):
    __slots__ = ("text", "final")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    text: str
    final: bool
    def __init__(self, text: _Optional[str] = ..., final: _Optional[bool] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("call_id", "tool", "arguments", "client")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    arguments: _struct_pb2.Struct
    client: bool
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., client: _Optional[bool] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("call_id", "tool", "ok", "result", "error", "code", "denied", "interrupted", "duration_ms")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DENIED_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    ok: bool
    result: _struct_pb2.Struct
    error: str
    code: str
    denied: bool
    interrupted: bool
    duration_ms: float
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., ok: _Optional[bool] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., code: _Optional[str] = ..., denied: _Optional[bool] = ..., interrupted: _Optional[bool] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class ApprovalRequested(_message.Message):
    __slots__ = ("approval_id", "call_id", "tool", "arguments", "action_hash")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    ACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    call_id: str
    tool: str
    arguments: _struct_pb2.Struct
    action_hash: str
    def __init__(self, approval_id: _Optional[str] = ..., call_id: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., action_hash: _Optional[str] = ...) -> None: ...

class ApprovalDecided(_message.Message):
    __slots__ = ("approval_id", "decision", "reason", "decided_by")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    decision: str
    reason: str
    decided_by: str
    def __init__(self, approval_id: _Optional[str] = ..., decision: _Optional[str] = ..., reason: _Optional[str] = ..., decided_by: _Optional[str] = ...) -> None: ...

class SkillUsed(_message.Message):
    __slots__ = ("skill", "body", "part", "parts", "allowed_tools", "pre_approved_tools", "files", "min_tool_calls", "error", "file")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    PRE_APPROVED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    MIN_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    skill: str
    body: str
    part: int
    parts: int
    allowed_tools: _containers.RepeatedScalarFieldContainer[str]
    pre_approved_tools: _containers.RepeatedScalarFieldContainer[str]
    files: _containers.RepeatedScalarFieldContainer[str]
    min_tool_calls: int
    error: str
    file: str
    def __init__(self, skill: _Optional[str] = ..., body: _Optional[str] = ..., part: _Optional[int] = ..., parts: _Optional[int] = ..., allowed_tools: _Optional[_Iterable[str]] = ..., pre_approved_tools: _Optional[_Iterable[str]] = ..., files: _Optional[_Iterable[str]] = ..., min_tool_calls: _Optional[int] = ..., error: _Optional[str] = ..., file: _Optional[str] = ...) -> None: ...

class RecalledMemory(_message.Message):
    __slots__ = ("id", "text", "score", "scope")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    score: float
    scope: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., scope: _Optional[str] = ...) -> None: ...

class MemoryRecalled(_message.Message):
    __slots__ = ("query", "automatic", "memory_ids", "memories", "error", "code", "duration_ms")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IDS_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    query: str
    automatic: bool
    memory_ids: _containers.RepeatedScalarFieldContainer[str]
    memories: _containers.RepeatedCompositeFieldContainer[RecalledMemory]
    error: str
    code: str
    duration_ms: float
    def __init__(self, query: _Optional[str] = ..., automatic: _Optional[bool] = ..., memory_ids: _Optional[_Iterable[str]] = ..., memories: _Optional[_Iterable[_Union[RecalledMemory, _Mapping]]] = ..., error: _Optional[str] = ..., code: _Optional[str] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class MemoryStored(_message.Message):
    __slots__ = ("text", "kind", "scope", "memory_id", "error", "code", "duration_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    kind: str
    scope: str
    memory_id: str
    error: str
    code: str
    duration_ms: float
    def __init__(self, text: _Optional[str] = ..., kind: _Optional[str] = ..., scope: _Optional[str] = ..., memory_id: _Optional[str] = ..., error: _Optional[str] = ..., code: _Optional[str] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class ContextCompacted(_message.Message):
    __slots__ = ("summary", "up_to_seq", "method")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    summary: str
    up_to_seq: int
    method: str
    def __init__(self, summary: _Optional[str] = ..., up_to_seq: _Optional[int] = ..., method: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "output")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    output: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...

class TaskResumed(_message.Message):
    __slots__ = ("from_seq",)
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    def __init__(self, from_seq: _Optional[int] = ...) -> None: ...

class ModelUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_prompt_tokens: _Optional[int] = ...) -> None: ...
