"""gRPC channels and stubs to the backend services, opened once per app and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from ducklm.runtime.v1 import runtime_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import open_channel
from services.gateway.config import Settings

__all__ = ["Backends"]

# Services whose read RPCs are safe to retry on UNAVAILABLE.
_IDEMPOTENT = ("ducklm.runtime.v1.RuntimeService",)


@dataclass
class Backends:
    settings: Settings
    channels: dict[str, grpc.aio.Channel]
    runtime: runtime_pb2_grpc.RuntimeServiceStub

    @classmethod
    def connect(cls, settings: Settings) -> Backends:
        addresses = {
            "runtime": settings.runtime_address,
            "tools": settings.tools_address,
            "skills": settings.skills_address,
            "memory": settings.memory_address,
        }
        channels = {name: open_channel(address) for name, address in addresses.items()}
        channels["runtime"] = open_channel(settings.runtime_address, idempotent_services=_IDEMPOTENT)
        return cls(settings=settings, channels=channels, runtime=runtime_pb2_grpc.RuntimeServiceStub(channels["runtime"]))

    async def health(self) -> dict[str, str]:
        """Each backend's gRPC health: "serving", or why not."""
        report: dict[str, str] = {}
        for name, channel in self.channels.items():
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                report[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
            except grpc.aio.AioRpcError as exc:
                report[name] = f"unavailable: {exc.code().name}"
        return report

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
