"""Waiting for things the services do just after a call returns."""

from __future__ import annotations

import asyncio

from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc


async def recorded_experiences(skills: skills_pb2_grpc.SkillsServiceAsyncStub, task_id: str) -> list[skills_pb2.Experience]:
    """The task's experiences, once recorded (the runtime records them just after a turn rests)."""
    for _ in range(100):
        found = (await skills.ListExperiences(skills_pb2.ListExperiencesRequest(task_id=task_id))).experiences
        if found:
            return list(found)
        await asyncio.sleep(0.05)
    return []
