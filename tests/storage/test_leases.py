"""Task leases between two runtime replicas' stores on one real PostgreSQL database: a task is
written only by the replica holding its lease (the fencing token is checked on every write), an
expired lease is taken over by another replica, and events reach subscribers on any replica.
Expiry is simulated by moving the lease's end into the past, not by waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from services.common.errors import Aborted
from services.runtime.pg_leases import LEASE_LOST
from services.runtime.pg_store import PostgresTaskStore
from services.runtime.states import TaskStatus


@pytest.fixture
async def two_replicas(postgres_dsn: str) -> AsyncIterator[tuple[PostgresTaskStore, PostgresTaskStore]]:
    a = await PostgresTaskStore.open(postgres_dsn, replica_id="a", lease_seconds=30)
    b = await PostgresTaskStore.open(postgres_dsn, replica_id="b", lease_seconds=30)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _expire(dsn: str, task_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("UPDATE tasks SET lease_expire = now() - interval '1 second' WHERE id = %s", (task_id,))


async def test_a_live_lease_is_not_taken_and_an_expired_one_is(
    two_replicas: tuple[PostgresTaskStore, PostgresTaskStore], postgres_dsn: str
) -> None:
    a, b = two_replicas
    task, _ = await a.open_task({"text": "hello"})
    assert a.held_tasks() == [task.id]
    assert await b.claim_expired() == []
    await _expire(postgres_dsn, task.id)
    claimed = await b.claim_expired()
    assert [t.id for t in claimed] == [task.id] and b.held_tasks() == [task.id]
    assert await b.claim_expired() == [] and await a.claim_expired() == []
    with pytest.raises(Aborted) as fenced:
        await a.append_event(task.id, "memory_stored", {"from": "a"})
    assert fenced.value.reason == LEASE_LOST
    with pytest.raises(Aborted):
        await a.complete_turn(task.id, "a's reply", final=True, reason="finish")
    await b.append_event(task.id, "memory_stored", {"from": "b"})
    assert await a.renew_leases() == [task.id] and await b.renew_leases() == []
    done = await b.complete_turn(task.id, "b's reply", final=True, reason="finish")
    assert done.last_reply == "b's reply" and b.held_tasks() == []
    stored = [e.data.get("from") for e in await a.list_events(task.id) if e.type == "memory_stored"]
    assert stored == ["b"]


async def test_a_turn_started_anywhere_takes_the_lease_and_a_cancel_fences_the_holder(
    two_replicas: tuple[PostgresTaskStore, PostgresTaskStore],
) -> None:
    a, b = two_replicas
    task, _ = await a.open_task({"text": "hello"})
    await a.complete_turn(task.id, "hi", final=False, reason="respond")
    assert a.held_tasks() == []
    await b.continue_task(task.id, {"text": "again"})  # the next turn runs on b
    assert b.held_tasks() == [task.id]
    await a.set_status(task.id, TaskStatus.CANCELLED, reason="cancelled on a")
    with pytest.raises(Aborted) as fenced:
        await b.append_event(task.id, "memory_stored", {"late": True})
    assert fenced.value.reason == LEASE_LOST
    assert (await b.get_task(task.id)).status is TaskStatus.CANCELLED


async def test_events_written_on_one_replica_reach_subscribers_on_another(
    two_replicas: tuple[PostgresTaskStore, PostgresTaskStore],
) -> None:
    a, b = two_replicas
    await asyncio.wait_for(b.live.listening.wait(), 30)
    task, _ = await a.open_task({"text": "hello"})
    queue = b.subscribe(task.id)
    written = [await a.append_event(task.id, "memory_stored", {"i": i}) for i in range(3)]
    seen: list[int] = []
    while len(set(seen)) < 3:
        event = await asyncio.wait_for(queue.get(), 30)
        if event.seq > 3:  # what the subscriber read as backlog may come again
            seen.append(event.seq)
    assert sorted(set(seen)) == [e.seq for e in written]
    b.unsubscribe(task.id, queue)
