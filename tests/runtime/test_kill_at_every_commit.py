"""SIGKILL the runtime just before each of its commits during a turn that asks for an approval,
restart it, and check: the task comes to rest with a status its log agrees with (an open
approval means waiting_approval), no event lost, the command ran at most once, and no
approval was used twice. Real processes (runtime, tools, skills) and a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.runtime.v1 import runtime_pb2
from google.protobuf.struct_pb2 import Value

from tests.runtime.fault_stack import (
    FaultStack,
    all_tasks,
    log_problems,
    running_stack,
    runtime_call,
    status_of,
    task_events,
    type_of,
    wait_at_rest,
)
from tests.scripted_model import ScriptedModel


@pytest.fixture
async def fault_stack(tmp_path: Path, scripted_model: ScriptedModel) -> AsyncIterator[FaultStack]:
    async with running_stack(tmp_path, scripted_model) as stack:
        yield stack


async def approval_turn(stack: FaultStack, tag: str) -> None:
    """One turn: a message, an approval asked for and given, the command, the answer. Returns
    when the task is completed or the runtime died."""

    async def chat() -> None:
        try:
            await runtime_call(stack, "Chat", runtime_pb2.ChatRequest(message=f"quick tag={tag}"), timeout=60)
        except grpc.aio.AioRpcError:
            pass  # the runtime died under the call

    call = asyncio.create_task(chat())
    while stack.runtime_alive():
        try:
            tasks = await all_tasks(stack)
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
            continue
        if tasks and status_of(tasks[0]) in ("completed", "failed"):
            break
        if tasks and status_of(tasks[0]) == "waiting_approval":
            await stack.approve_pending()
        await asyncio.sleep(0.05)
    await call


async def test_sigkill_at_every_commit_point_of_an_approval_turn(fault_stack: FaultStack) -> None:
    # A clean run first: how many commits the turn makes (its commit points).
    assert await fault_stack.start_runtime(database="clean.db")
    await approval_turn(fault_stack, "clean")
    points = fault_stack.commits()
    fault_stack.kill_runtime()
    assert fault_stack.runs()["clean"] == 1
    assert points >= 8, points  # schema, open, model call, directive, tool call, approval, decision, ...
    for point in range(1, points + 1):
        tag = f"kill{point}"
        database = f"kill{point}.db"
        if await fault_stack.start_runtime(kill_at=point, database=database):
            await approval_turn(fault_stack, tag)
        assert not fault_stack.runtime_alive() or point > points, f"commit {point} was never reached"
        fault_stack.kill_runtime()
        assert await fault_stack.start_runtime(database=database)
        tasks = await wait_at_rest(fault_stack, timeout=30)
        assert len(tasks) <= 1
        for task in tasks:
            events = await task_events(fault_stack, task.id)
            assert log_problems(task, events) == [], (point, [type_of(e) for e in events])
            assert status_of(task) == "completed", (point, task.error, [type_of(e) for e in events])
            assert sum(1 for e in events if type_of(e) == "user_message") == 1
        # The command ran at most once; once when the log says it succeeded; and a run the log
        # does not show as a success is one it marks interrupted (it may have taken effect).
        ran = fault_stack.runs()[tag]
        assert ran <= 1, (point, ran)
        if tasks:
            events = await task_events(fault_stack, tasks[0].id)
            results = [e for e in events if type_of(e) == "tool_result"]
            succeeded = [e for e in results if e.data["ok"]]
            interrupted = [e for e in results if e.data.fields.get("interrupted", Value()).bool_value]
            assert len(succeeded) <= ran, (point, ran, [type_of(e) for e in events])
            assert ran == len(succeeded) or interrupted, (point, ran, [type_of(e) for e in events])
        fault_stack.kill_runtime()
