"""Three runtime replicas on one PostgreSQL database, with tasks in flight (a read-only step, an
approved command, an answer) while replicas are SIGKILLed and started again: another replica
takes each dead one's tasks over when their lease expires and resumes them from the log.
Nothing may be lost, run twice or left mid-turn, and a client streaming from a replica that
stayed up sees every stored event."""

from __future__ import annotations

from pathlib import Path

from tests.storage.replicas import run_replica_kills


async def test_replicas_killed_mid_task_lose_nothing_and_repeat_nothing(tmp_path: Path, postgres_dsn: str) -> None:
    report = await run_replica_kills(tmp_path, postgres_dsn, tasks=50, kills=5, replicas=3, concurrency=10,
                                     command_seconds=1.0)
    summary = "\n".join(report.lines())
    assert report.tasks >= 50, summary
    assert report.lost_events == 0, summary
    assert report.duplicate_side_effects == 0, summary
    assert report.stuck_tasks == 0, summary
    assert report.approvals_reused == 0, summary
    assert report.unseen_by_stream == 0, summary
    assert report.inconsistent == [], summary
    assert report.failed == {}, summary
    # The kills landed on tasks in flight: some were finished by a replica that did not start them.
    assert report.taken_over > 0, summary
