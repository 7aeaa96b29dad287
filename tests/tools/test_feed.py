"""The approvals feed on its own: each watcher gets its task's changes in commit order, and one
that falls behind is cut off (its stream ends) instead of holding up the book."""

from __future__ import annotations

from dataclasses import replace

from services.tools.feed import ApprovalFeed, Subscription
from services.tools.store import ApprovalRecord

RECORD = ApprovalRecord(
    id="a1", task_id="t1", tool_name="write_file", arguments={}, canonical_action="{}", action_hash="h",
    working_directory="/w", policy_version="1", state="PENDING", scope="ONCE", create_time=0.0,
    decide_time=None, expire_time=None, use_time=None, decided_by="", reason="",
)


async def _first(subscription: Subscription, count: int) -> list[ApprovalRecord]:
    records: list[ApprovalRecord] = []
    async for record in subscription.changes():
        records.append(record)
        if len(records) == count:
            break
    return records


async def test_each_watcher_gets_its_tasks_changes_in_order() -> None:
    feed = ApprovalFeed()
    async with feed.subscribe() as everything, feed.subscribe("t2") as only_t2:
        assert feed.watchers == 2
        feed.publish(RECORD)
        feed.publish(replace(RECORD, id="a2", task_id="t2"))
        feed.publish(replace(RECORD, state="APPROVED"))
        assert [(r.id, r.state) for r in await _first(everything, 3)] == [
            ("a1", "PENDING"), ("a2", "PENDING"), ("a1", "APPROVED")
        ]
        assert [r.id for r in await _first(only_t2, 1)] == ["a2"]
    assert feed.watchers == 0


async def test_a_watcher_that_falls_behind_is_cut_off_and_its_stream_ends() -> None:
    feed = ApprovalFeed(queue_size=2)
    async with feed.subscribe() as slow:
        for index in range(5):
            feed.publish(replace(RECORD, id=f"a{index}"))
        assert slow.cut_off
        # What was queued before the cut-off, then the end: the watcher reconnects and resyncs.
        assert [r.id async for r in slow.changes()] == ["a0", "a1"]


async def test_closing_the_feed_ends_every_stream_after_what_is_queued() -> None:
    feed = ApprovalFeed()
    async with feed.subscribe() as first, feed.subscribe("t1") as second:
        feed.publish(RECORD)
        feed.close()
        feed.publish(replace(RECORD, id="late"))  # after the close: no longer delivered
        assert [r.id async for r in first.changes()] == ["a1"]
        assert [r.id async for r in second.changes()] == ["a1"]
