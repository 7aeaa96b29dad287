"""The runtime's settings, from `DUCKLM_RUNTIME_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from services.common.config import data_dir, repo_root

__all__ = ["Settings"]


class Settings(BaseModel):
    address: str = "127.0.0.1:50051"
    database: Path = Field(default_factory=lambda: data_dir() / "runtime.db")
    # A PostgreSQL DSN (postgresql://user:password@host:5432/db) for tasks and events instead of
    # the SQLite file `database`; several runtimes may share it. Empty: SQLite.
    database_url: str = Field(default="", pattern=r"^$|^postgres(ql)?://", repr=False)
    # Most connections one runtime keeps open to that PostgreSQL database.
    database_pool_size: int = Field(default=10, gt=0, le=200)
    # On PostgreSQL, how long a replica owns a running task without renewing its lease; a task
    # whose replica died is taken over by another this long after its last renewal.
    lease_seconds: float = Field(default=15.0, ge=0.3, le=600)
    # This replica's name in task leases (empty: a random one per process). Names must differ
    # between replicas running at the same time.
    replica_id: str = Field(default="", max_length=200)
    models_file: Path = Field(default_factory=lambda: repo_root() / "config" / "models.yaml")
    directive_schema: Path = Field(
        default_factory=lambda: repo_root() / "config" / "action_directive.schema.json"
    )
    # How the model is asked for each step: "staged" (choose the step by its likelihood, then fill
    # only its fields; built for small models, needs llama-server's native API) or "single" (one
    # JSON directive under the whole step's schema, for any OpenAI-compatible server).
    decision: Literal["staged", "single"] = "staged"
    # Most decisions one user message may take before the task fails.
    max_steps: int = Field(default=8, gt=0)
    # Most model-output repairs in a row before the task fails.
    max_repairs: int = Field(default=2, ge=0)
    # Most tokens (prompt + completion) one task may spend.
    token_budget: int = Field(default=200_000, gt=0)
    # Longest reply (in characters) the step schema lets the model write, for every model. Unset:
    # the chat model's own `max_reply_chars` in models.yaml, or what its max_tokens leaves room for.
    max_reply_chars: int | None = Field(default=None, gt=0)
    # Memories recalled into the context at the start of each turn (0 turns it off).
    recall_top_k: int = Field(default=3, ge=0, le=20)
    # How long the turn's first model call waits for that recall, which runs while the context is
    # built; a recall not ready by then is used from the next step (services/runtime/early_recall.py).
    recall_wait_ms: float = Field(default=20.0, ge=0)
    # Store each final answer (`finish`) as a memory.
    remember_answers: bool = False
    # Compact older steps once the prompt is estimated past this share of the context window.
    compact_ratio: float = Field(default=0.75, gt=0.1, le=1.0)
    # Share of the chat model's context window the skills catalogue may take (counted with the
    # model's tokenizer); relevant skills past it are left out, and the prompt says how many.
    skill_catalogue_share: float = Field(default=0.12, gt=0, le=0.5)
    # Share of the context window one part of a skill body or skill file may take; longer texts
    # are shown in parts, read on with `read_skill_file`.
    skill_body_share: float = Field(default=0.2, gt=0, le=0.5)
    # Steps kept verbatim after a compaction.
    compact_keep_events: int = Field(default=6, ge=1)
    # How long the runtime waits before reconnecting to the tools service's approvals stream after
    # it dropped (decisions made meanwhile are read on reconnect).
    approval_retry_seconds: float = Field(default=1.0, gt=0)
    # Reflect on each finished task and propose a skill when one emerges.
    reflect_after_task: bool = False
    # How long a call waits for a tools or skills service that is restarting before the task
    # fails with an error naming it.
    peer_wait_seconds: float = Field(default=15.0, gt=0)
    # How often health checks that the chat model server answers (NOT_SERVING while it does not).
    model_probe_seconds: float = Field(default=5.0, gt=0)
    tools_address: str = "127.0.0.1:50052"
    skills_address: str = "127.0.0.1:50053"
    memory_address: str = "127.0.0.1:50054"
    # Run without peer services (no tools, skills or memory): respond/finish only.
    standalone: bool = False
    system_prompt: str = (
        "You are DuckLM, a helpful local assistant. Answer the user briefly and accurately. "
        "Reply only with a JSON action."
    )
