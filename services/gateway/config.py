"""The gateway's settings, from `DUCKLM_GATEWAY_*` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["Settings"]


class Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, lt=65536)
    runtime_address: str = "127.0.0.1:50051"
    tools_address: str = "127.0.0.1:50052"
    skills_address: str = "127.0.0.1:50053"
    memory_address: str = "127.0.0.1:50054"
    # Deadline of a chat call (the model may take a while on a slow machine).
    chat_timeout_seconds: float = Field(default=600.0, gt=0)
    # Deadline of every other backend call.
    call_timeout_seconds: float = Field(default=10.0, gt=0)
