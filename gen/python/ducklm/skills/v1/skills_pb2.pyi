import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProposalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPOSAL_STATE_UNSPECIFIED: _ClassVar[ProposalState]
    PROPOSAL_STATE_PENDING: _ClassVar[ProposalState]
    PROPOSAL_STATE_INVALID: _ClassVar[ProposalState]
    PROPOSAL_STATE_PROMOTED: _ClassVar[ProposalState]
    PROPOSAL_STATE_REJECTED: _ClassVar[ProposalState]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_COMPLETED: _ClassVar[Outcome]
    OUTCOME_FAILED: _ClassVar[Outcome]
    OUTCOME_CANCELLED: _ClassVar[Outcome]
PROPOSAL_STATE_UNSPECIFIED: ProposalState
PROPOSAL_STATE_PENDING: ProposalState
PROPOSAL_STATE_INVALID: ProposalState
PROPOSAL_STATE_PROMOTED: ProposalState
PROPOSAL_STATE_REJECTED: ProposalState
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_COMPLETED: Outcome
OUTCOME_FAILED: Outcome
OUTCOME_CANCELLED: Outcome

class Skill(_message.Message):
    __slots__ = ("name", "description", "license", "compatibility", "metadata", "allowed_tools", "body", "files", "pre_approved_tools", "warnings")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PRE_APPROVED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    license: str
    compatibility: str
    metadata: _containers.ScalarMap[str, str]
    allowed_tools: _containers.RepeatedScalarFieldContainer[str]
    body: str
    files: _containers.RepeatedScalarFieldContainer[str]
    pre_approved_tools: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedCompositeFieldContainer[SkillProblem]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., license: _Optional[str] = ..., compatibility: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., allowed_tools: _Optional[_Iterable[str]] = ..., body: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., pre_approved_tools: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[_Union[SkillProblem, _Mapping]]] = ...) -> None: ...

class ListSkillsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSkillsResponse(_message.Message):
    __slots__ = ("skills", "next_page_token", "invalid_skills")
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INVALID_SKILLS_FIELD_NUMBER: _ClassVar[int]
    skills: _containers.RepeatedCompositeFieldContainer[Skill]
    next_page_token: str
    invalid_skills: _containers.RepeatedCompositeFieldContainer[SkillProblem]
    def __init__(self, skills: _Optional[_Iterable[_Union[Skill, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., invalid_skills: _Optional[_Iterable[_Union[SkillProblem, _Mapping]]] = ...) -> None: ...

class SkillProblem(_message.Message):
    __slots__ = ("source", "field", "message")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    source: str
    field: str
    message: str
    def __init__(self, source: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetSkillRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSkillFileRequest(_message.Message):
    __slots__ = ("name", "path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class GetSkillFileResponse(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    def __init__(self, content: _Optional[bytes] = ...) -> None: ...

class ValidateSkillRequest(_message.Message):
    __slots__ = ("skill_md", "name", "folder_name", "strict")
    SKILL_MD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    skill_md: str
    name: str
    folder_name: str
    strict: bool
    def __init__(self, skill_md: _Optional[str] = ..., name: _Optional[str] = ..., folder_name: _Optional[str] = ..., strict: _Optional[bool] = ...) -> None: ...

class ValidateSkillResponse(_message.Message):
    __slots__ = ("valid", "problems", "warnings")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[SkillProblem]
    warnings: _containers.RepeatedCompositeFieldContainer[SkillProblem]
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[SkillProblem, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[SkillProblem, _Mapping]]] = ...) -> None: ...

class SkillProposal(_message.Message):
    __slots__ = ("id", "name", "skill_md", "state", "problems", "experience_ids", "event_refs", "rationale", "create_time", "decide_time", "decided_by", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SKILL_MD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    EXPERIENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_REFS_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    skill_md: str
    state: ProposalState
    problems: _containers.RepeatedCompositeFieldContainer[SkillProblem]
    experience_ids: _containers.RepeatedScalarFieldContainer[str]
    event_refs: _containers.RepeatedScalarFieldContainer[str]
    rationale: str
    create_time: _timestamp_pb2.Timestamp
    decide_time: _timestamp_pb2.Timestamp
    decided_by: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., skill_md: _Optional[str] = ..., state: _Optional[_Union[ProposalState, str]] = ..., problems: _Optional[_Iterable[_Union[SkillProblem, _Mapping]]] = ..., experience_ids: _Optional[_Iterable[str]] = ..., event_refs: _Optional[_Iterable[str]] = ..., rationale: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProposeSkillRequest(_message.Message):
    __slots__ = ("skill_md", "experience_ids", "event_refs", "rationale")
    SKILL_MD_FIELD_NUMBER: _ClassVar[int]
    EXPERIENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_REFS_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    skill_md: str
    experience_ids: _containers.RepeatedScalarFieldContainer[str]
    event_refs: _containers.RepeatedScalarFieldContainer[str]
    rationale: str
    def __init__(self, skill_md: _Optional[str] = ..., experience_ids: _Optional[_Iterable[str]] = ..., event_refs: _Optional[_Iterable[str]] = ..., rationale: _Optional[str] = ...) -> None: ...

class ListProposalsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: ProposalState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[ProposalState, str]] = ...) -> None: ...

class ListProposalsResponse(_message.Message):
    __slots__ = ("proposals", "next_page_token")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[SkillProposal]
    next_page_token: str
    def __init__(self, proposals: _Optional[_Iterable[_Union[SkillProposal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetProposalRequest(_message.Message):
    __slots__ = ("proposal_id",)
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    def __init__(self, proposal_id: _Optional[str] = ...) -> None: ...

class PromoteProposalRequest(_message.Message):
    __slots__ = ("proposal_id", "decided_by")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    decided_by: str
    def __init__(self, proposal_id: _Optional[str] = ..., decided_by: _Optional[str] = ...) -> None: ...

class RejectProposalRequest(_message.Message):
    __slots__ = ("proposal_id", "decided_by", "reason")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    decided_by: str
    reason: str
    def __init__(self, proposal_id: _Optional[str] = ..., decided_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Experience(_message.Message):
    __slots__ = ("id", "task_id", "goal", "outcome", "steps", "tools_used", "errors", "duration_seconds", "prompt_tokens", "completion_tokens", "final_answer", "create_time", "skills_used", "last_event_seq")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_USED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINAL_ANSWER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SKILLS_USED_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    goal: str
    outcome: Outcome
    steps: int
    tools_used: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    duration_seconds: float
    prompt_tokens: int
    completion_tokens: int
    final_answer: str
    create_time: _timestamp_pb2.Timestamp
    skills_used: _containers.RepeatedScalarFieldContainer[str]
    last_event_seq: int
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., goal: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., steps: _Optional[int] = ..., tools_used: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ..., duration_seconds: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., final_answer: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., skills_used: _Optional[_Iterable[str]] = ..., last_event_seq: _Optional[int] = ...) -> None: ...

class RecordExperienceRequest(_message.Message):
    __slots__ = ("experience",)
    EXPERIENCE_FIELD_NUMBER: _ClassVar[int]
    experience: Experience
    def __init__(self, experience: _Optional[_Union[Experience, _Mapping]] = ...) -> None: ...

class ListExperiencesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "outcome", "task_id", "tool")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    outcome: Outcome
    task_id: str
    tool: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., task_id: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class ListExperiencesResponse(_message.Message):
    __slots__ = ("experiences", "next_page_token")
    EXPERIENCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiences: _containers.RepeatedCompositeFieldContainer[Experience]
    next_page_token: str
    def __init__(self, experiences: _Optional[_Iterable[_Union[Experience, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
