"""How `make eval` judges a task, and how it refuses a model it cannot use before any task runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scripts.eval.heldout import HELDOUT_FILES
from scripts.eval.run_eval import ModelChoiceError, models_file_for, select_tasks
from scripts.eval.scoring import format_report, judge, summary
from scripts.eval.suite import SMOKE_TASKS, TASKS, make_workspace
from services.common.config import repo_root

BY_ID = {task.id: task for task in TASKS}


def ev(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def test_the_suite_is_large_and_covers_every_kind_of_request() -> None:
    assert len(TASKS) >= 30 and len({t.id for t in TASKS}) == len(TASKS)
    assert {t.category for t in TASKS} >= {"list", "find", "read", "count", "summarise", "write", "command", "no_tool", "multi_step"}
    assert set(SMOKE_TASKS) <= set(BY_ID)


def test_a_task_is_judged_on_its_first_tool_its_fact_and_its_files(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    read = BY_ID["read-meeting"]
    events = [ev("directive"), ev("tool_call", tool="read_file", arguments={"path": "notes.txt"}), ev("directive")]
    right = judge(read, status="completed", reply="It is on Thursday.", events=events, workspace=tmp_path, seconds=1.0, max_steps=8)
    assert (right.tool_right, right.answer_right, right.file_right, right.steps, right.dishonest) == (True, True, None, 2, False)
    wrong = judge(read, status="completed", reply="Friday", events=events[2:], workspace=tmp_path, seconds=1.0, max_steps=8)
    assert (wrong.tool_right, wrong.answer_right) == (False, False)
    # A general question answered with a tool call is a wrong first step.
    general = judge(BY_ID["general-capital"], status="completed", reply="Paris", events=events, workspace=tmp_path,
                    seconds=1.0, max_steps=8)
    assert general.tool_right is False and general.answer_right is True


def test_a_write_is_judged_on_the_files_only_once_approved(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    write = BY_ID["write-hello"]
    calls = [ev("directive"), ev("tool_call", tool="write_file", arguments={})]
    unapproved = judge(write, status="completed", reply="", events=calls, workspace=tmp_path, seconds=1.0, max_steps=8)
    assert unapproved.file_right is None
    approved = [*calls, ev("approval_decided", decision="approved")]
    assert judge(write, status="completed", reply="", events=approved, workspace=tmp_path, seconds=1, max_steps=8).file_right is False
    (tmp_path / "hello.txt").write_text("Hello world\n")
    assert judge(write, status="completed", reply="", events=approved, workspace=tmp_path, seconds=1, max_steps=8).file_right is True


def test_a_loop_reported_as_a_plain_success_is_dishonest(tmp_path: Path) -> None:
    task = BY_ID["list-root"]
    call = ev("tool_call", tool="list_dir", arguments={"path": "."})
    looped = [call, call, call, ev("status_changed", reason="respond")]
    assert judge(task, status="completed", reply="", events=looped, workspace=tmp_path, seconds=1, max_steps=8).dishonest
    said_so = [*looped[:-1], ev("status_changed", reason="step_limit")]
    assert not judge(task, status="completed", reply="", events=said_so, workspace=tmp_path, seconds=1, max_steps=8).dishonest
    report = format_report([judge(task, status="failed", reply="", events=[], workspace=tmp_path, seconds=1, max_steps=8)], "t")
    assert "SUMMARY t: tool 0.0" in report and "target >= 0.8: NOT met" in report


def test_a_model_that_cannot_serve_is_refused_before_any_task(tmp_path: Path) -> None:
    base = repo_root() / "config" / "models.yaml"
    with pytest.raises(ModelChoiceError, match="does not answer"):
        models_file_for("http://127.0.0.1:9/v1", tmp_path, base)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelChoiceError, match="not a GGUF"):
        models_file_for(str(not_gguf), tmp_path, base)
    with pytest.raises(ModelChoiceError, match="cannot read"):
        models_file_for(str(tmp_path / "missing.gguf"), tmp_path, base)
    with pytest.raises(SystemExit, match="unknown task"):
        select_tasks("no-such-task", smoke=False)


def test_the_heldout_suite_has_its_own_workspace_and_tasks(tmp_path: Path) -> None:
    heldout = select_tasks("", smoke=False, suite="heldout")
    assert heldout and all(task.files_before is HELDOUT_FILES for task in heldout)
    assert not {task.id for task in heldout} & {task.id for task in TASKS}
    make_workspace(tmp_path, HELDOUT_FILES)
    assert (tmp_path / "recipes" / "soup.txt").read_text().startswith("Tomato soup")
    assert not (tmp_path / "notes.txt").exists()
    assert len(select_tasks("", smoke=False, suite="all")) == len(TASKS) + len(heldout)


def test_a_skill_no_task_asked_for_is_counted(tmp_path: Path) -> None:
    task = BY_ID["general-capital"]
    events = [{"type": "skill_used", "data": {"skill": "analyze-project"}},
              {"type": "directive", "data": {"action": "respond"}}]
    used = judge(task, status="completed", reply="Paris", events=events, workspace=tmp_path, seconds=1, max_steps=8)
    plain = judge(task, status="completed", reply="Paris", events=events[1:], workspace=tmp_path, seconds=1, max_steps=8)
    assert used.skills == ("analyze-project",) and plain.skills == ()
    assert summary([used, plain])["skill_unasked"] == 1
    assert re.search(r"skill used unasked: +1 ", format_report([used, plain], "t"))
