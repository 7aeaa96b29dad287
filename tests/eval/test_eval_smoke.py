"""`make eval`'s harness on its smoke subset, through the real stack with the real model: every
task comes to rest on a fresh workspace, is judged, and is reported."""

from __future__ import annotations

import pytest

from deploy.stack import LocalStack
from scripts.eval.harness import run_tasks
from scripts.eval.scoring import format_report
from scripts.eval.suite import SMOKE_TASKS, TASKS

pytestmark = pytest.mark.model


async def test_the_smoke_tasks_run_end_to_end_and_are_judged(stack: LocalStack) -> None:
    tasks = [task for task in TASKS if task.id in SMOKE_TASKS]
    results = await run_tasks(stack.gateway_url, stack.data_dir / "workspace", tasks, max_steps=8, verbose=False)
    assert sorted(r.id for r in results) == sorted(SMOKE_TASKS)
    for result in results:
        assert result.status in ("completed", "failed"), result
        assert result.steps >= 1 and not result.error.startswith("HTTP"), result
        assert not result.dishonest, result
    by_id = {r.id: r for r in results}
    # The general question needs no tool; the reading question's first step reads.
    assert by_id["general-capital"].tool_right, by_id["general-capital"]
    assert by_id["read-meeting"].first_tool in ("read_file", "run_command"), by_id["read-meeting"]
    report = format_report(results, "smoke")
    print("\n" + report)
    assert "SUMMARY smoke:" in report
