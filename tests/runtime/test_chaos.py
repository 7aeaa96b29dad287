"""A bounded chaos run in the suite: tasks with a read-only step, an approved command and an
answer, while the runtime, tools and skills processes are SIGKILLed and restarted at random
(seeded) moments, and the model server is stopped and started again. Nothing may be lost, run twice, left mid-turn or approved twice."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.chaos import run_chaos


async def test_random_kills_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    report = await run_chaos(
        tmp_path, tasks=6, kills=6, concurrency=3, seed=13, services=("runtime", "tools", "skills", "model")
    )
    summary = "\n".join(report.lines())
    assert sum(report.kills.values()) == 6
    assert report.lost_events == 0, summary
    assert report.duplicate_side_effects == 0, summary
    assert report.stuck_tasks == 0, summary
    assert report.approvals_reused == 0, summary
    assert report.inconsistent == [], summary
    assert report.completed + len(report.failed) >= 6, summary
    # A task may fail only because a peer stayed away, and then the error names it.
    assert all("service" in error or "model server" in error for error in report.failed.values()), summary
