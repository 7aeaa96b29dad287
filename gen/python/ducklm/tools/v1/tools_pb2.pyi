from ducklm.approvals.v1 import approvals_pb2 as _approvals_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_READ_ONLY: _ClassVar[RiskLevel]
    RISK_LEVEL_WRITE: _ClassVar[RiskLevel]
    RISK_LEVEL_DANGEROUS: _ClassVar[RiskLevel]

class ExecuteToolOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTE_TOOL_OUTCOME_UNSPECIFIED: _ClassVar[ExecuteToolOutcome]
    EXECUTE_TOOL_OUTCOME_DONE: _ClassVar[ExecuteToolOutcome]
    EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED: _ClassVar[ExecuteToolOutcome]
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_READ_ONLY: RiskLevel
RISK_LEVEL_WRITE: RiskLevel
RISK_LEVEL_DANGEROUS: RiskLevel
EXECUTE_TOOL_OUTCOME_UNSPECIFIED: ExecuteToolOutcome
EXECUTE_TOOL_OUTCOME_DONE: ExecuteToolOutcome
EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED: ExecuteToolOutcome

class Tool(_message.Message):
    __slots__ = ("name", "description", "arguments_schema", "risk_level", "requires_approval")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    arguments_schema: str
    risk_level: RiskLevel
    requires_approval: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., arguments_schema: _Optional[str] = ..., risk_level: _Optional[_Union[RiskLevel, str]] = ..., requires_approval: _Optional[bool] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools", "next_page_token", "commands_sandboxed")
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_SANDBOXED_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    next_page_token: str
    commands_sandboxed: bool
    def __init__(self, tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., commands_sandboxed: _Optional[bool] = ...) -> None: ...

class ExecuteToolRequest(_message.Message):
    __slots__ = ("tool_name", "arguments", "task_id", "approval_id")
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    tool_name: str
    arguments: _struct_pb2.Struct
    task_id: str
    approval_id: str
    def __init__(self, tool_name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., task_id: _Optional[str] = ..., approval_id: _Optional[str] = ...) -> None: ...

class ExecuteToolResponse(_message.Message):
    __slots__ = ("result", "truncated", "action_hash", "outcome", "approval")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    truncated: bool
    action_hash: str
    outcome: ExecuteToolOutcome
    approval: _approvals_pb2.Approval
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., truncated: _Optional[bool] = ..., action_hash: _Optional[str] = ..., outcome: _Optional[_Union[ExecuteToolOutcome, str]] = ..., approval: _Optional[_Union[_approvals_pb2.Approval, _Mapping]] = ...) -> None: ...
