"""Scopes: a memory belongs to one task, to the long-term memory, or to a project. Recall reads the
long-term scope and the asking task's own memories only, above the threshold; promoting is the
one way a task's memory reaches long-term; forgetting a whole scope needs its name confirmed.
Bad input is refused with nothing written. On both backends, over real gRPC."""

from __future__ import annotations

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2

from .fakes import FakeRuntime, MemoryServer, StartMemory

TASK = memory_pb2.MEMORY_SCOPE_TASK
LONG_TERM = memory_pb2.MEMORY_SCOPE_LONG_TERM
PROJECT = memory_pb2.MEMORY_SCOPE_PROJECT


async def remember(memory: MemoryServer, text: str, **fields: object) -> memory_pb2.Memory:
    stored: memory_pb2.Memory = await memory.stub.Remember(memory_pb2.RememberRequest(text=text, **fields))  # type: ignore[arg-type]
    return stored


async def listed(memory: MemoryServer, **conditions: object) -> list[str]:
    reply = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(
        filter=memory_pb2.MemoryFilter(**conditions), page_size=500))  # type: ignore[arg-type]
    return sorted(m.text for m in reply.memories)


async def test_the_scope_follows_the_request(memory: MemoryServer) -> None:
    assert (await remember(memory, "noted in a chat", task_id="t1")).scope == TASK
    assert (await remember(memory, "stated by a person")).scope == LONG_TERM
    in_project = await remember(memory, "about the pond", scope=PROJECT, project="pond")
    assert in_project.scope == PROJECT and in_project.project == "pond"
    assert await listed(memory, scope=TASK) == ["noted in a chat"]
    assert await listed(memory, scope=LONG_TERM) == ["stated by a person"]
    assert await listed(memory, project="pond") == ["about the pond"]


async def test_recall_reads_long_term_and_this_task_only(memory: MemoryServer) -> None:
    await remember(memory, "the duck pond is behind the mill", task_id="task-a")
    await remember(memory, "the duck pond freezes in january", task_id="task-b")
    await remember(memory, "the duck pond has a heron", scope=PROJECT, project="birds")
    await remember(memory, "the duck pond is the user's favourite place")

    async def recall(task_id: str) -> list[str]:
        reply = await memory.stub.Recall(memory_pb2.RecallRequest(text="where is the duck pond", task_id=task_id, top_k=10))
        assert reply.score_threshold > 0
        return sorted(hit.memory.text for hit in reply.results)

    assert await recall("task-a") == ["the duck pond is behind the mill", "the duck pond is the user's favourite place"]
    assert await recall("task-b") == ["the duck pond freezes in january", "the duck pond is the user's favourite place"]
    assert await recall("task-c") == ["the duck pond is the user's favourite place"]


async def test_recall_drops_what_scores_below_the_threshold(start_memory: StartMemory, runtime: FakeRuntime) -> None:
    memory = await start_memory(runtime.address, recall_score_threshold=0.5)
    await remember(memory, "herons eat fish")
    await remember(memory, "ducks eat bread")
    reply = await memory.stub.Recall(memory_pb2.RecallRequest(text="what do herons eat", task_id="t"))
    assert [hit.memory.text for hit in reply.results] == ["herons eat fish"]
    assert all(hit.score >= 0.5 for hit in reply.results) and reply.score_threshold == pytest.approx(0.5)


async def test_only_promotion_moves_a_task_memory_to_long_term(memory: MemoryServer) -> None:
    noted = await remember(memory, "the user likes herons", task_id="task-a")
    # Another task's recall cannot see it...
    before = await memory.stub.Recall(memory_pb2.RecallRequest(text="what does the user like", task_id="task-b"))
    assert noted.id not in [hit.memory.id for hit in before.results]
    # ...until a person promotes it; promoting keeps where it came from.
    promoted = await memory.stub.PromoteMemory(memory_pb2.PromoteMemoryRequest(memory_id=noted.id))
    assert promoted.scope == LONG_TERM and promoted.task_id == "task-a" and promoted.HasField("update_time")
    after = await memory.stub.Recall(memory_pb2.RecallRequest(text="what does the user like", task_id="task-b"))
    assert noted.id in [hit.memory.id for hit in after.results]
    again = await memory.stub.PromoteMemory(memory_pb2.PromoteMemoryRequest(memory_id=noted.id))
    assert again.scope == LONG_TERM
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await memory.stub.PromoteMemory(memory_pb2.PromoteMemoryRequest(memory_id=noted.id, scope=TASK))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_update_reembeds_and_keeps_the_rest(memory: MemoryServer) -> None:
    stored = await remember(memory, "herons nest in trees", kind="fact", tags=["birds"], task_id="t")
    updated = await memory.stub.UpdateMemory(memory_pb2.UpdateMemoryRequest(
        memory_id=stored.id, update_mask=["text"], text="kingfishers dive for minnows"))
    assert updated.text == "kingfishers dive for minnows" and updated.kind == "fact" and list(updated.tags) == ["birds"]
    found = await memory.stub.Search(memory_pb2.SearchRequest(text="kingfishers dive for minnows", top_k=1))
    assert found.results[0].memory.id == stored.id and found.results[0].score > 0.99
    retagged = await memory.stub.UpdateMemory(memory_pb2.UpdateMemoryRequest(
        memory_id=stored.id, update_mask=["tags", "kind"], tags=["river"], kind="note"))
    assert list(retagged.tags) == ["river"] and retagged.kind == "note" and retagged.text == updated.text
    for bad in (memory_pb2.UpdateMemoryRequest(memory_id=stored.id),
                memory_pb2.UpdateMemoryRequest(memory_id=stored.id, update_mask=["scope"])):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await memory.stub.UpdateMemory(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_pages_newest_first(memory: MemoryServer) -> None:
    for index in range(7):
        await remember(memory, f"note {index}", task_id="t")
    first = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(page_size=3))
    assert [m.text for m in first.memories] == ["note 6", "note 5", "note 4"] and first.total_size == 7
    second = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(page_size=3, page_token=first.next_page_token))
    third = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(page_size=3, page_token=second.next_page_token))
    assert [m.text for m in [*second.memories, *third.memories]] == ["note 3", "note 2", "note 1", "note 0"]
    assert third.next_page_token == ""
    by_text = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(filter=memory_pb2.MemoryFilter(text="NOTE 3")))
    assert [m.text for m in by_text.memories] == ["note 3"]


async def test_forgetting_a_whole_scope_needs_its_name(memory: MemoryServer) -> None:
    await remember(memory, "one", task_id="t1")
    await remember(memory, "two", task_id="t1")
    await remember(memory, "kept", task_id="t2")
    await remember(memory, "lasting")
    scope = memory_pb2.ScopeRef(scope=TASK, task_id="t1")
    for confirm in ("", "yes", "task:t2", "long_term"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await memory.stub.Forget(memory_pb2.ForgetRequest(scope=scope, confirm=confirm))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "task:t1" in (refused.value.details() or "")
    assert await listed(memory) == ["kept", "lasting", "one", "two"]
    forgotten = await memory.stub.Forget(memory_pb2.ForgetRequest(scope=scope, confirm="task:t1"))
    assert forgotten.deleted == 2 and await listed(memory) == ["kept", "lasting"]
    long_term = memory_pb2.ScopeRef(scope=LONG_TERM)
    assert (await memory.stub.Forget(memory_pb2.ForgetRequest(scope=long_term, confirm="long_term"))).deleted == 1
    assert await listed(memory) == ["kept"]


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (memory_pb2.RememberRequest(text="x" * 4001), "at most 4000"),
        (memory_pb2.RememberRequest(text="x", scope=7), "unknown scope"),  # type: ignore[arg-type]
        (memory_pb2.RememberRequest(text="x", scope=TASK), "needs task_id"),
        (memory_pb2.RememberRequest(text="x", scope=PROJECT), "project"),
        (memory_pb2.RememberRequest(text="x", scope=PROJECT, project="no spaces"), "not a valid name"),
        (memory_pb2.RememberRequest(text="x", tags=["t"] * 51), "at most 50 tags"),
        (memory_pb2.RememberRequest(text="x", kind="k" * 201), "kind"),
    ],
)
async def test_bad_remembers_are_refused_and_nothing_is_written(
    memory: MemoryServer, request_: memory_pb2.RememberRequest, fragment: str
) -> None:
    await remember(memory, "already here")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await memory.stub.Remember(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in (refused.value.details() or "")
    assert await listed(memory) == ["already here"]


async def test_a_vector_of_the_wrong_dimension_is_refused(memory: MemoryServer) -> None:
    await remember(memory, "already here")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await memory.stub.Search(memory_pb2.SearchRequest(vector=memory_pb2.Vector(values=[0.5] * 63)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "63 values" in (refused.value.details() or "") and "64-dimensional" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await memory.stub.Search(memory_pb2.SearchRequest(text="x", scopes=[memory_pb2.ScopeRef(scope=9)]))  # type: ignore[arg-type]
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await listed(memory) == ["already here"]
