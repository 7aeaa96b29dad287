"""The tools service's approvals store, one suite run on both backends: SQLite (store.py) and a
real PostgreSQL server (pg_store.py). Every test runs once per backend (`approval_store`)."""

from __future__ import annotations

import asyncio
import dataclasses

from services.tools.approval_storage import ApprovalStorage
from services.tools.pg_store import PostgresApprovalStore
from services.tools.store import ApprovalRecord

NOW = 1_000_000.0


def _record(approval_id: str, *, task_id: str = "t1", action_hash: str = "h1", create_time: float = NOW,
            pattern_hash: str = "") -> ApprovalRecord:
    return ApprovalRecord(
        id=approval_id, task_id=task_id, tool_name="run_command", arguments={"argv": ["touch", "é\x00"]},
        canonical_action='{"argv":["touch"]}', action_hash=action_hash, working_directory=".",
        policy_version="v1", state="PENDING", scope="ONCE", create_time=create_time, decide_time=None,
        expire_time=None, use_time=None, decided_by="", reason="", pattern="touch *" if pattern_hash else "",
        pattern_hash=pattern_hash,
    )


async def _approve(store: ApprovalStorage, approval_id: str, scope: str = "ONCE", ttl: float = 60) -> ApprovalRecord:
    decided = await store.decide(approval_id, state="APPROVED", scope=scope, now=NOW + 1, expire_time=NOW + ttl,
                                 decided_by="alice", reason="fine")
    assert decided is not None
    return decided


async def test_an_approval_reads_back_as_written(approval_store: ApprovalStorage) -> None:
    record = _record("a1")
    await approval_store.insert(record, actor="t1")
    assert await approval_store.get("a1") == record
    assert await approval_store.get("nope") is None
    assert await approval_store.find("t1", "h1", "PENDING") == record
    assert await approval_store.find("t1", "h1", "APPROVED") is None


async def test_a_decision_is_made_once_and_audited(approval_store: ApprovalStorage) -> None:
    await approval_store.insert(_record("a1"), actor="t1")
    decided = await _approve(approval_store, "a1")
    assert (decided.state, decided.decided_by, decided.expire_time) == ("APPROVED", "alice", NOW + 60)
    again = await approval_store.decide("a1", state="DENIED", scope="ONCE", now=NOW + 2, expire_time=None,
                                        decided_by="bob", reason="no")
    assert again is None
    assert [(e["event"], e["actor"]) for e in await approval_store.events("a1")] == [
        ("requested", "t1"), ("approved", "alice")
    ]


async def test_a_single_use_approval_is_consumed_exactly_once_under_concurrency(
    approval_store: ApprovalStorage,
) -> None:
    await approval_store.insert(_record("a1"), actor="t1")
    await _approve(approval_store, "a1")
    assert await approval_store.consume_once("a1", "t2", "h1", NOW + 2) is None  # another task's
    assert await approval_store.consume_once("a1", "t1", "other", NOW + 2) is None  # another action
    outcomes = await asyncio.gather(*(approval_store.consume_once("a1", "t1", "h1", NOW + 2) for _ in range(10)))
    used = [o for o in outcomes if o is not None]
    assert len(used) == 1 and used[0].state == "USED" and used[0].use_time == NOW + 2
    assert [e["event"] for e in await approval_store.events("a1")].count("used") == 1


async def test_grants_cover_their_task_until_they_expire(approval_store: ApprovalStorage) -> None:
    await approval_store.insert(_record("g1"), actor="t1")
    await _approve(approval_store, "g1", scope="TASK")
    await approval_store.insert(_record("p1", action_hash="h2", pattern_hash="ph"), actor="t1")
    await _approve(approval_store, "p1", scope="TASK_PATTERN")
    grant = await approval_store.find_grant("t1", "h1", NOW + 2)
    assert grant is not None and grant.id == "g1"
    assert await approval_store.find_grant("t2", "h1", NOW + 2) is None
    pattern = await approval_store.find_pattern_grant("t1", "ph", NOW + 2)
    assert pattern is not None and pattern.id == "p1"
    assert await approval_store.find_pattern_grant("t1", "", NOW + 2) is None
    await approval_store.record_use("g1", "t1", NOW + 3, "touch x")
    assert (await approval_store.get("g1")) == dataclasses.replace(grant, use_time=NOW + 3)
    await approval_store.expire_due(NOW + 60)
    assert (await approval_store.get("g1")) is not None
    assert [r.state for r in await approval_store.page("", "t1", 0, 10)] == ["EXPIRED", "EXPIRED"]
    assert await approval_store.find_grant("t1", "h1", NOW + 2) is None
    assert [(e["event"], e["reason"]) for e in await approval_store.events("g1")][-2:] == [
        ("used", "touch x"), ("expired", "")
    ]


async def test_paging_filters_by_state_and_task_oldest_first(approval_store: ApprovalStorage) -> None:
    for i in range(5):
        await approval_store.insert(_record(f"a{i}", task_id="t1" if i % 2 else "t2", create_time=NOW + i), actor="x")
    await _approve(approval_store, "a3")
    assert [r.id for r in await approval_store.page("", "", 0, 10)] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r.id for r in await approval_store.page("", "", 1, 2)] == ["a1", "a2"]
    assert [r.id for r in await approval_store.page("PENDING", "t1", 0, 10)] == ["a1"]
    assert [r.id for r in await approval_store.page("APPROVED", "", 0, 10)] == ["a3"]


async def test_two_replicas_asking_at_once_for_one_action_share_one_pending_approval(postgres_dsn: str) -> None:
    replicas = [await PostgresApprovalStore.open(postgres_dsn) for _ in range(2)]
    try:
        pending = await asyncio.gather(
            *(replicas[i % 2].insert_pending(_record(f"a{i}"), actor="t1") for i in range(8))
        )
        assert len({record.id for record in pending}) == 1
        assert [r.id for r in await replicas[0].page("PENDING", "t1", 0, 10)] == [pending[0].id]
        other = await replicas[1].insert_pending(_record("b1", action_hash="h2"), actor="t1")
        assert other.id == "b1"
    finally:
        for replica in replicas:
            await replica.close()
