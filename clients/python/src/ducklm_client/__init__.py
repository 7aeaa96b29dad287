"""DuckLM's Python client: `AsyncClient` (asyncio) and `Client` (blocking) over the gRPC API, typed
results (models.py), and exceptions that say what went wrong (errors.py). The `ducklm` command
line (cli/) is built on `Client`.

The generated stubs (`ducklm.*.v1`) come from the repository's gen/python.
"""

from ducklm_client.client import AsyncClient
from ducklm_client.config import Connection
from ducklm_client.errors import (
    AlreadyExistsError,
    ApprovalRequiredError,
    CancelledError,
    DeadlineExceededError,
    DuckLMError,
    EmbeddingsDisabledError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from ducklm_client.models import (
    REST_STATUSES,
    Approval,
    ChatResult,
    Event,
    Memory,
    Proposal,
    Replay,
    ScoredMemory,
    SearchResult,
    Skill,
    SkillList,
    SkillProblem,
    Task,
    TaskStatus,
    Usage,
    Validation,
)
from ducklm_client.sync import Client

__all__ = [
    "REST_STATUSES",
    "AlreadyExistsError",
    "Approval",
    "ApprovalRequiredError",
    "AsyncClient",
    "CancelledError",
    "ChatResult",
    "Client",
    "Connection",
    "DeadlineExceededError",
    "DuckLMError",
    "EmbeddingsDisabledError",
    "Event",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "Memory",
    "NotFoundError",
    "PermissionDeniedError",
    "Proposal",
    "Replay",
    "ResourceExhaustedError",
    "ScoredMemory",
    "SearchResult",
    "ServiceUnavailableError",
    "Skill",
    "SkillList",
    "SkillProblem",
    "Task",
    "TaskStatus",
    "UnauthenticatedError",
    "Usage",
    "Validation",
]
