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

class MemoryScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_SCOPE_UNSPECIFIED: _ClassVar[MemoryScope]
    MEMORY_SCOPE_TASK: _ClassVar[MemoryScope]
    MEMORY_SCOPE_LONG_TERM: _ClassVar[MemoryScope]
    MEMORY_SCOPE_PROJECT: _ClassVar[MemoryScope]
MEMORY_SCOPE_UNSPECIFIED: MemoryScope
MEMORY_SCOPE_TASK: MemoryScope
MEMORY_SCOPE_LONG_TERM: MemoryScope
MEMORY_SCOPE_PROJECT: MemoryScope

class ScopeRef(_message.Message):
    __slots__ = ("scope", "task_id", "project")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    scope: MemoryScope
    task_id: str
    project: str
    def __init__(self, scope: _Optional[_Union[MemoryScope, str]] = ..., task_id: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class Memory(_message.Message):
    __slots__ = ("id", "text", "task_id", "kind", "tags", "metadata", "create_time", "scope", "project", "update_time", "collection")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    task_id: str
    kind: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    scope: MemoryScope
    project: str
    update_time: _timestamp_pb2.Timestamp
    collection: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., task_id: _Optional[str] = ..., kind: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scope: _Optional[_Union[MemoryScope, str]] = ..., project: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., collection: _Optional[str] = ...) -> None: ...

class RememberRequest(_message.Message):
    __slots__ = ("text", "task_id", "kind", "tags", "metadata", "collection", "scope", "project")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    text: str
    task_id: str
    kind: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    collection: str
    scope: MemoryScope
    project: str
    def __init__(self, text: _Optional[str] = ..., task_id: _Optional[str] = ..., kind: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., collection: _Optional[str] = ..., scope: _Optional[_Union[MemoryScope, str]] = ..., project: _Optional[str] = ...) -> None: ...

class MemoryFilter(_message.Message):
    __slots__ = ("task_id", "kind", "tags", "scope", "project", "text")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    scope: MemoryScope
    project: str
    text: str
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., scope: _Optional[_Union[MemoryScope, str]] = ..., project: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("text", "vector", "top_k", "filter", "score_threshold", "collection", "scopes")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    text: str
    vector: Vector
    top_k: int
    filter: MemoryFilter
    score_threshold: float
    collection: str
    scopes: _containers.RepeatedCompositeFieldContainer[ScopeRef]
    def __init__(self, text: _Optional[str] = ..., vector: _Optional[_Union[Vector, _Mapping]] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[MemoryFilter, _Mapping]] = ..., score_threshold: _Optional[float] = ..., collection: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[ScopeRef, _Mapping]]] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class ScoredMemory(_message.Message):
    __slots__ = ("memory", "score")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    memory: Memory
    score: float
    def __init__(self, memory: _Optional[_Union[Memory, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "embedding_ms", "search_ms", "score_threshold")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_MS_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoredMemory]
    embedding_ms: float
    search_ms: float
    score_threshold: float
    def __init__(self, results: _Optional[_Iterable[_Union[ScoredMemory, _Mapping]]] = ..., embedding_ms: _Optional[float] = ..., search_ms: _Optional[float] = ..., score_threshold: _Optional[float] = ...) -> None: ...

class GetMemoryRequest(_message.Message):
    __slots__ = ("memory_id", "collection")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    collection: str
    def __init__(self, memory_id: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("memory_id", "filter", "scope", "collection", "confirm")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    filter: MemoryFilter
    scope: ScopeRef
    collection: str
    confirm: str
    def __init__(self, memory_id: _Optional[str] = ..., filter: _Optional[_Union[MemoryFilter, _Mapping]] = ..., scope: _Optional[_Union[ScopeRef, _Mapping]] = ..., collection: _Optional[str] = ..., confirm: _Optional[str] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "dimension", "count", "backend", "embedding_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    count: int
    backend: str
    embedding_model: str
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., count: _Optional[int] = ..., backend: _Optional[str] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class ListMemoriesRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "collection")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    filter: MemoryFilter
    page_size: int
    page_token: str
    collection: str
    def __init__(self, filter: _Optional[_Union[MemoryFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class ListMemoriesResponse(_message.Message):
    __slots__ = ("memories", "next_page_token", "total_size")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    next_page_token: str
    total_size: int
    def __init__(self, memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UpdateMemoryRequest(_message.Message):
    __slots__ = ("memory_id", "update_mask", "text", "kind", "tags", "metadata", "collection")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    text: str
    kind: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    collection: str
    def __init__(self, memory_id: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., kind: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., collection: _Optional[str] = ...) -> None: ...

class PromoteMemoryRequest(_message.Message):
    __slots__ = ("memory_id", "scope", "project", "collection")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    scope: MemoryScope
    project: str
    collection: str
    def __init__(self, memory_id: _Optional[str] = ..., scope: _Optional[_Union[MemoryScope, str]] = ..., project: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class RecallRequest(_message.Message):
    __slots__ = ("text", "task_id", "top_k")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    text: str
    task_id: str
    top_k: int
    def __init__(self, text: _Optional[str] = ..., task_id: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...
