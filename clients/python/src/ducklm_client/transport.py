"""How `AsyncClient` reaches the services: one channel per address (TLS and the token when
configured), deadlines, retries of read-only calls on UNAVAILABLE through the channel's service
config, and every `AioRpcError` turned into a `DuckLMError` that names the service and method."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, TypeVar

import grpc
from ducklm.approvals.v1 import approvals_pb2_grpc
from ducklm.memory.v1 import memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2_grpc

from ducklm_client.config import Connection
from ducklm_client.errors import error_from_rpc

__all__ = ["CALL_TIMEOUT", "CHAT_TIMEOUT", "Transport"]

T = TypeVar("T")

# Deadlines (seconds). A chat turn runs the model, perhaps several times, on a CPU.
CHAT_TIMEOUT = 600.0
CALL_TIMEOUT = 30.0

# Read-only calls are retried on UNAVAILABLE (a service restarting); nothing else ever is.
_IDEMPOTENT = {
    "ducklm.runtime.v1.RuntimeService": ("GetTask", "ListTasks", "ListTaskEvents"),
    "ducklm.approvals.v1.ApprovalsService": ("GetApproval", "ListApprovals"),
    "ducklm.skills.v1.SkillsService": (
        "ListSkills",
        "GetSkill",
        "ValidateSkill",
        "ListProposals",
        "GetProposal",
    ),
    "ducklm.memory.v1.MemoryService": ("Search", "GetMemory", "ListCollections"),
}
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": service, "method": method}
                    for service, methods in _IDEMPOTENT.items()
                    for method in methods
                ],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


# Which service's address each API lives at (approvals are served by the tools service).
HOME = {"runtime": "runtime", "approvals": "tools", "skills": "skills", "memory": "memory"}
_STUBS: dict[str, Any] = {
    "runtime": runtime_pb2_grpc.RuntimeServiceStub,
    "approvals": approvals_pb2_grpc.ApprovalsServiceStub,
    "skills": skills_pb2_grpc.SkillsServiceStub,
    "memory": memory_pb2_grpc.MemoryServiceStub,
}


class Transport:
    """The channels of one client and the two call shapes it uses (unary, server streaming)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._channels: dict[str, grpc.aio.Channel] = {}
        # Sent with every call when a token is configured; never logged.
        self.metadata = (("authorization", f"Bearer {connection.token}"),) if connection.token else None

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    def channel(self, service: str) -> grpc.aio.Channel:
        """The channel to `service`'s address, opened on first use (services sharing an address
        share it)."""
        address = self.connection.address(service)
        if address not in self._channels:
            options = [("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)]
            if self.connection.root_certificates is not None:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=self.connection.root_certificates
                )
                self._channels[address] = grpc.aio.secure_channel(address, credentials, options=options)
            else:
                self._channels[address] = grpc.aio.insecure_channel(address, options=options)
        return self._channels[address]

    def _method(self, api: str, method: str) -> Any:
        return getattr(_STUBS[api](self.channel(HOME[api])), method)

    def _error(self, exc: grpc.aio.AioRpcError, api: str, method: str) -> Exception:
        service = HOME[api]
        return error_from_rpc(exc, service=service, method=method, address=self.connection.address(service))

    async def unary(
        self,
        api: str,
        method: str,
        request: Any,
        timeout: float | None = CALL_TIMEOUT,
        *,
        as_approver: bool = False,
    ) -> Any:
        """One call; `as_approver` adds the approver credential (Approve and Deny only)."""
        metadata = self.metadata
        if as_approver:
            metadata = (
                *(metadata or ()),
                ("ducklm-approver-token", self.connection.approver_token),
                ("ducklm-approver-via", self.connection.approver_via),
            )
        try:
            return await self._method(api, method)(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, api, method) from None

    async def collect(
        self,
        api: str,
        method: str,
        request: Callable[[str, int], Any],
        items: Callable[[Any], Iterable[T]],
        *,
        limit: int | None = None,
        page_size: int = 500,
    ) -> list[T]:
        """Every item of a paged List call, page after page (AIP-158), at most `limit`.
        `request(page_token, page_size)` builds each page's request; `items` reads its items."""
        found: list[T] = []
        token = ""
        while limit is None or len(found) < limit:
            size = page_size if limit is None else min(limit - len(found), page_size)
            response = await self.unary(api, method, request(token, size))
            found.extend(items(response))
            token = response.next_page_token
            if not token:
                break
        return found

    async def stream(
        self, api: str, method: str, request: Any, timeout: float | None
    ) -> AsyncGenerator[Any, None]:
        call = self._method(api, method)(request, timeout=timeout, metadata=self.metadata)
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, api, method) from None
        finally:
            # The caller may stop early: tell the server, which then stops sending.
            call.cancel()
