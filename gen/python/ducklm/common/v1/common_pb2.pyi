import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
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
    __slots__ = ("task_id", "seq", "type", "create_time", "data")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    type: EventType
    create_time: _timestamp_pb2.Timestamp
    data: _struct_pb2.Struct
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ..., type: _Optional[_Union[EventType, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ModelUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_prompt_tokens: _Optional[int] = ...) -> None: ...
