"""Waiting for things the services do just after a call returns.

Every wait here is bounded and fails the test when its time runs out, saying what it waited for:
a wait that gave up quietly would let the assertion after it judge a half-done state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

__all__ = ["recorded_experiences", "until"]

T = TypeVar("T")


async def until(
    probe: Callable[[], Awaitable[T | None]], what: str, *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """The first value `probe` returns that is not None (nor falsy); fails naming `what` after
    `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def recorded_experiences(skills: skills_pb2_grpc.SkillsServiceAsyncStub, task_id: str) -> list[skills_pb2.Experience]:
    """The task's experiences, once recorded (the runtime records them just after a turn rests)."""

    async def found() -> list[skills_pb2.Experience]:
        return list((await skills.ListExperiences(skills_pb2.ListExperiencesRequest(task_id=task_id))).experiences)

    return await until(found, f"an experience of task {task_id}", timeout=5.0)
