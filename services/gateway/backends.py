"""gRPC channels and stubs to the backend services, opened once per app and closed on shutdown.

The channels carry the shared token and TLS when DUCKLM_GRPC_* asks for them (open_channel).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from ducklm.approvals.v1 import approvals_pb2_grpc
from ducklm.memory.v1 import memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import open_channel
from services.gateway.config import Settings

__all__ = ["SERVICES", "Backends"]

# The backends, by the name errors and /healthz use. Approvals are served by the tools process.
SERVICES = ("runtime", "tools", "skills", "memory")

# Services whose RPCs the gateway may retry on UNAVAILABLE. Only the runtime's reads would be
# safe; Chat is not, so the gateway retries nothing by itself and reports the failure instead.
_IDEMPOTENT: tuple[str, ...] = ()


@dataclass
class Backends:
    settings: Settings
    channels: dict[str, grpc.aio.Channel]
    runtime: runtime_pb2_grpc.RuntimeServiceAsyncStub
    approvals: approvals_pb2_grpc.ApprovalsServiceAsyncStub
    skills: skills_pb2_grpc.SkillsServiceAsyncStub
    memory: memory_pb2_grpc.MemoryServiceAsyncStub

    @classmethod
    def connect(cls, settings: Settings) -> Backends:
        addresses = {
            "runtime": settings.runtime_address,
            "tools": settings.tools_address,
            "skills": settings.skills_address,
            "memory": settings.memory_address,
        }
        channels = {
            name: open_channel(address, idempotent_services=_IDEMPOTENT)
            for name, address in addresses.items()
        }
        return cls(
            settings=settings,
            channels=channels,
            runtime=runtime_pb2_grpc.RuntimeServiceStub(channels["runtime"]),
            approvals=approvals_pb2_grpc.ApprovalsServiceStub(channels["tools"]),
            skills=skills_pb2_grpc.SkillsServiceStub(channels["skills"]),
            memory=memory_pb2_grpc.MemoryServiceStub(channels["memory"]),
        )

    @property
    def timeout(self) -> float:
        """The deadline of an ordinary backend call."""
        return self.settings.call_timeout_seconds

    async def health(self) -> dict[str, str]:
        """Each backend's gRPC health, checked at once: "serving", or why not."""

        async def check(channel: grpc.aio.Channel) -> str:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2.0
                )
            except grpc.aio.AioRpcError as exc:
                return f"unavailable: {exc.code().name}"
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)).lower()

        names = list(self.channels)
        statuses = await asyncio.gather(*(check(self.channels[name]) for name in names))
        return dict(zip(names, statuses, strict=True))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
