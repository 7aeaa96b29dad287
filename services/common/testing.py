"""Helpers for tests (and benchmarks) that talk to real services: free ports, waiting for gRPC
health, and serving a stand-in HTTP app (a scripted model server) inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket

import grpc
import uvicorn
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.types import ASGIApp

__all__ = ["LocalHttpServer", "free_port", "wait_for_health"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_for_health(address: str, *, service: str = "", timeout: float = 30.0) -> None:
    """Waits until the gRPC server at `address` reports SERVING, or raises TimeoutError."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"gRPC server at {address} did not become healthy in {timeout}s")
            await asyncio.sleep(0.1)


class LocalHttpServer:
    """An ASGI app served by uvicorn in this event loop on 127.0.0.1:`port`. `start` returns once
    it accepts connections; `stop` ends it (`abrupt`: at once, dropping open connections, as a
    killed server would; else after the requests in flight)."""

    def __init__(self, app: ASGIApp, port: int, *, log_level: str = "error", abrupt: bool = False) -> None:
        self.port = port
        self._abrupt = abrupt
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan="off",
                                timeout_graceful_shutdown=1 if abrupt else None)
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # it failed to start (the port is taken): say why
                raise RuntimeError(f"the server on port {self.port} stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = self._abrupt
        await self._task
        self._task = None
