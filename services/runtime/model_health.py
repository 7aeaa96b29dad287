"""Keeps the runtime's gRPC health in line with its chat model server: NOT_SERVING while the
server does not answer (absent, or frozen), SERVING again once it does. Only probes and sets
health; never calls a model or touches a task."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health_pb2

from services.common.server import GrpcServer
from services.runtime.model_client import ModelClient

__all__ = ["ModelHealth"]

log = logging.getLogger(__name__)


class ModelHealth:
    """Probes the chat role's server every `interval` seconds; start with `start()`."""

    def __init__(self, models: ModelClient, server: GrpcServer, interval: float) -> None:
        self._models = models
        self._server = server
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.problem = ""

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="model-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def check(self) -> str:
        """Probes once and sets health; the problem found ("" when the server answers)."""
        problem = await self._models.probe("chat", timeout=min(3.0, self._interval))
        if problem != self.problem:
            if problem:
                log.warning("health: NOT_SERVING: %s", problem)
            else:
                log.info("health: the model server answers again: SERVING")
        self.problem = problem
        status = health_pb2.HealthCheckResponse.NOT_SERVING if problem else health_pb2.HealthCheckResponse.SERVING
        for name in ("", *self._server.service_names):
            await self._server.health.set(name, status)
        return problem

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                log.exception("probing the model server failed; trying again")
