"""SIGKILL the tools service while an approved command runs: the call is reported interrupted
(never repeated), and the task goes on and completes once the service is back. Real processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.runtime.v1 import runtime_pb2

from tests.runtime.fault_stack import (
    FaultStack,
    all_tasks,
    running_stack,
    runtime_call,
    status_of,
    task_events,
    type_of,
)
from tests.scripted_model import ScriptedModel


@pytest.fixture
async def slow_stack(tmp_path: Path, scripted_model: ScriptedModel) -> AsyncIterator[FaultStack]:
    async with running_stack(tmp_path, scripted_model, sleep=5.0) as stack:
        yield stack


async def test_an_interrupted_command_is_marked_and_never_repeated(slow_stack: FaultStack) -> None:
    assert slow_stack.stack is not None
    assert await slow_stack.start_runtime()
    reply = await runtime_call(slow_stack, "Chat", runtime_pb2.ChatRequest(message="quick tag=once"), timeout=60)
    assert status_of(reply.task) == "waiting_approval"
    assert await slow_stack.approve_pending() == 1
    for _ in range(200):  # until the command runs
        if slow_stack.runs()["once"]:
            break
        await asyncio.sleep(0.05)
    slow_stack.stack.kill("tools")
    await slow_stack.stack.restart("tools")
    for _ in range(400):
        try:
            (task,) = await all_tasks(slow_stack)
        except grpc.aio.AioRpcError:
            task = reply.task
        if status_of(task) in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert status_of(task) == "completed", task.error
    events = await task_events(slow_stack, task.id)
    (result,) = [e for e in events if type_of(e) == "tool_result"]
    assert not result.data["ok"] and result.data["code"] == "UNAVAILABLE"
    assert "not repeated" in str(result.data["error"])
    # A repeat would have logged its line as it started, before the task could complete.
    assert slow_stack.runs()["once"] == 1
