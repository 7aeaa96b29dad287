"""RecordExperience and ListExperiences: storing what tasks did, filtering and paging."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from ducklm.skills.v1 import skills_pb2


def _experience(
    task_id: str, outcome: skills_pb2.Outcome, tools: list[str], **extra: Any
) -> skills_pb2.Experience:
    return skills_pb2.Experience(
        task_id=task_id, goal=f"goal of {task_id}", outcome=outcome, tools_used=tools, **extra
    )


async def _record(stub: Any, experience: skills_pb2.Experience) -> skills_pb2.Experience:
    reply: skills_pb2.Experience = await stub.RecordExperience(
        skills_pb2.RecordExperienceRequest(experience=experience)
    )
    return reply


async def test_record_keeps_every_field(skills_service: Any) -> None:
    given = _experience(
        "task-1",
        skills_pb2.OUTCOME_FAILED,
        ["list_dir", "read_file"],
        steps=7,
        errors=["read_file: no such file"],
        duration_seconds=12.5,
        prompt_tokens=1500,
        completion_tokens=230,
        final_answer="Could not find the README.",
        skills_used=["analyze-project"],
    )
    stored = await _record(skills_service.stub, given)
    assert len(stored.id) == 32 and stored.create_time.seconds > 0
    listed = await skills_service.stub.ListExperiences(skills_pb2.ListExperiencesRequest())
    assert list(listed.experiences) == [stored]
    expected = skills_pb2.Experience()
    expected.CopyFrom(given)
    expected.id = stored.id
    expected.create_time.CopyFrom(stored.create_time)
    assert stored == expected


async def test_list_filters_by_outcome_task_and_tool(skills_service: Any) -> None:
    stub = skills_service.stub
    done = skills_pb2.OUTCOME_COMPLETED
    failed = skills_pb2.OUTCOME_FAILED
    a = await _record(stub, _experience("task-a", done, ["list_dir", "read_file"]))
    b = await _record(stub, _experience("task-b", failed, ["run_command"]))
    c = await _record(stub, _experience("task-a", failed, ["read_file"]))
    await _record(stub, _experience("task-c", skills_pb2.OUTCOME_CANCELLED, []))

    async def ids(**where: Any) -> list[str]:
        reply = await stub.ListExperiences(skills_pb2.ListExperiencesRequest(**where))
        return [experience.id for experience in reply.experiences]

    assert await ids(outcome=failed) == [c.id, b.id]  # newest first
    assert await ids(task_id="task-a") == [c.id, a.id]
    assert await ids(tool="read_file") == [c.id, a.id]
    assert await ids(tool="read") == []  # whole tool names only
    assert await ids(tool="read_file", outcome=done) == [a.id]
    assert await ids(task_id="task-b", tool="run_command", outcome=failed) == [b.id]
    assert len(await ids()) == 4


async def test_list_is_paged(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    recorded = [
        await _record(stub, _experience(f"task-{n}", skills_pb2.OUTCOME_COMPLETED, ["list_dir"]))
        for n in range(5)
    ]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = await stub.ListExperiences(skills_pb2.ListExperiencesRequest(page_size=2, page_token=token))
        seen.extend(experience.id for experience in reply.experiences)
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == [experience.id for experience in reversed(recorded)]
    assert pages == 3
    await rpc_error(
        stub.ListExperiences(skills_pb2.ListExperiencesRequest(page_token="not-ours")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await rpc_error(
        stub.ListExperiences(skills_pb2.ListExperiencesRequest(page_size=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_record_with_a_chosen_id_is_stored_once(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    given = _experience("task-r", skills_pb2.OUTCOME_COMPLETED, [], id="task-r:final")
    first = await _record(stub, given)
    again = await _record(stub, given)
    assert first.id == "task-r:final" and again == first
    reply = await stub.ListExperiences(skills_pb2.ListExperiencesRequest(task_id="task-r"))
    assert len(reply.experiences) == 1
    other_task = _experience("task-s", skills_pb2.OUTCOME_COMPLETED, [], id="task-r:final")
    await rpc_error(
        stub.RecordExperience(skills_pb2.RecordExperienceRequest(experience=other_task)),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_concurrent_retries_store_one_record(skills_service: Any) -> None:
    given = _experience("task-c", skills_pb2.OUTCOME_COMPLETED, ["read_file"], id="task-c:final")
    replies = await asyncio.gather(*(_record(skills_service.stub, given) for _ in range(5)))
    assert all(reply == replies[0] for reply in replies)
    listed = await skills_service.stub.ListExperiences(skills_pb2.ListExperiencesRequest())
    assert [experience.id for experience in listed.experiences] == ["task-c:final"]


async def test_incomplete_records_are_refused(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    bad = [
        skills_pb2.Experience(goal="g", outcome=skills_pb2.OUTCOME_COMPLETED),
        skills_pb2.Experience(task_id="t", outcome=skills_pb2.OUTCOME_COMPLETED),
        skills_pb2.Experience(task_id="t", goal="g"),
        skills_pb2.Experience(task_id="t", goal="g", outcome=skills_pb2.OUTCOME_COMPLETED, steps=-1),
        skills_pb2.Experience(task_id="t", goal="g", outcome=skills_pb2.OUTCOME_COMPLETED, id="bad id"),
        skills_pb2.Experience(
            task_id="t", goal="g", outcome=skills_pb2.OUTCOME_COMPLETED, duration_seconds=float("nan")
        ),
    ]
    for experience in bad:
        await rpc_error(
            stub.RecordExperience(skills_pb2.RecordExperienceRequest(experience=experience)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    reply = await stub.ListExperiences(skills_pb2.ListExperiencesRequest())
    assert list(reply.experiences) == []
