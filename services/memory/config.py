"""The memory service's settings, read from `DUCKLM_MEMORY_<FIELD>`; the defaults run locally."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from services.common.config import data_dir

__all__ = ["Settings"]


class Settings(BaseModel):
    address: str = "127.0.0.1:50054"
    # "edge": Qdrant Edge in this process, data under `edge_path`. "qdrant": a Qdrant server.
    backend: Literal["edge", "qdrant"] = "edge"
    edge_path: Path = Field(default_factory=lambda: data_dir() / "memory")
    # fsync every write before answering. False keeps the WAL only: a write then survives a
    # crash of this service but not a power loss until the next flush (on optimise and on stop).
    edge_flush_writes: bool = True
    # The Qdrant server for backend "qdrant", e.g. "http://127.0.0.1:6333". ":memory:" selects
    # qdrant-client's in-process mode, which is for tests only: it is slow and keeps nothing.
    qdrant_url: str = ""
    qdrant_api_key: SecretStr = SecretStr("")
    qdrant_timeout_s: int = 10
    # Where the runtime's EmbeddingService listens; every vector comes from there.
    runtime_address: str = "127.0.0.1:50051"
    embed_timeout_s: float = 30.0
    # The collection a request uses when it names none (for another embedding model than the
    # one it holds, `<collection>-<model>`; see placement.py).
    collection: str = "memories"
    # Recall (a task's automatic memory) keeps memories scoring at least this cosine similarity.
    # Calibrated for all-MiniLM-L6-v2 on scripts/bench/data/memory_facts.json (docs/memory.md):
    # re-calibrate with scripts/bench/memory_eval.py when you change the embedding model.
    recall_score_threshold: float = Field(default=0.35, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _qdrant_needs_url(self) -> Settings:
        if self.backend == "qdrant" and not self.qdrant_url:
            raise ValueError('backend "qdrant" needs qdrant_url (e.g. http://127.0.0.1:6333)')
        return self
