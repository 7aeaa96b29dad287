"""The gateway's settings, from `DUCKLM_GATEWAY_*` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.auth import approver_token_from_env

__all__ = ["Settings"]


class Settings(BaseModel):
    # Loopback by default. On any other address the gateway refuses to start without `token`.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, lt=65536)
    # When set, every API call needs `Authorization: Bearer <token>` (or the WebChat login cookie).
    token: str = ""
    # The approver credential (DUCKLM_APPROVER_TOKEN or DUCKLM_APPROVER_TOKEN_FILE) the gateway
    # sends with Approve and Deny: it is the human's side. `make run` generates one.
    approver_token: str = Field(default_factory=approver_token_from_env, repr=False)
    # Host names (the Host header, without the port) the gateway answers to. Empty: loopback
    # names and `host`; bound to every address (0.0.0.0, ::) that is every name, so set it there.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Other origins (e.g. "http://127.0.0.1:3000") whose pages may call the API from a browser.
    allowed_origins: list[str] = Field(default_factory=list)
    # Where each backend serves its Prometheus /metrics (service name -> URL), listed by /healthz
    # next to the gateway's own /metrics. `make run` fills it in.
    metrics_urls: dict[str, str] = Field(default_factory=dict)
    runtime_address: str = "127.0.0.1:50051"
    tools_address: str = "127.0.0.1:50052"
    skills_address: str = "127.0.0.1:50053"
    memory_address: str = "127.0.0.1:50054"
    # Deadline of a chat call (the model may take a while on a slow machine), and the longest an
    # OpenAI-style completion waits for a task, approvals included.
    chat_timeout_seconds: float = Field(default=600.0, gt=0)
    # Deadline of every other backend call.
    call_timeout_seconds: float = Field(default=10.0, gt=0)
    # Most event streams (SSE) open at once; past it a new stream gets a 503 at once.
    max_open_streams: int = Field(default=64, gt=0)
    # Seconds between SSE keep-alive comments while a stream has nothing to say.
    heartbeat_seconds: float = Field(default=15.0, gt=0)
