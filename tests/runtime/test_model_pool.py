"""The endpoint pool's choices: a task sticks to its endpoint and slot, new tasks spread, an
endpoint that is down is skipped and the task moves with a fresh prefix, saying why; and a
role in models.yaml lists one endpoint or several."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.runtime.model_pool import EndpointPool
from services.runtime.models_config import ModelsConfig, RoleConfig, load_models_config
from services.runtime.prompt_ledger import Unit

A, B = "http://a.test/v1", "http://b.test/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def pool(*endpoints: str, slots: int = 0) -> EndpointPool:
    config = ModelsConfig(roles={"chat": RoleConfig(endpoints=list(endpoints), model="m")})
    made = EndpointPool(config, clock=Clock())
    for endpoint in endpoints:
        made.set_slots(endpoint, slots)
    return made


def test_a_task_sticks_to_its_endpoint_and_new_tasks_spread() -> None:
    models = pool(A, B)
    first = models.acquire("chat", "task-1")
    models.release(first)
    second = models.acquire("chat", "task-2")
    models.release(second)
    assert {first.endpoint, second.endpoint} == {A, B}
    for _ in range(3):
        again = models.acquire("chat", "task-1")
        models.release(again)
        assert again.endpoint == first.endpoint and again.ledger is first.ledger and not again.moved


def test_a_task_keeps_its_slot_and_another_task_gets_the_idle_one() -> None:
    models = pool(A, slots=2)
    first = models.acquire("chat", "task-1")
    models.release(first)
    second = models.acquire("chat", "task-2")
    # task-1's slot is free but holds task-1's prefix: task-2 gets the other one.
    assert first.slot != second.slot and {first.slot, second.slot} == {0, 1}
    models.release(second)
    again = models.acquire("chat", "task-1")
    assert again.slot == first.slot
    # While task-1 runs, task-1's slot is busy: another call of task-1 takes the idle one.
    parallel = models.acquire("chat", "task-1")
    assert parallel.slot == second.slot
    models.release(again)
    models.release(parallel)


def test_an_endpoint_that_is_down_is_skipped_and_the_task_moves_saying_why() -> None:
    models = pool(A, B)
    lease = models.acquire("chat", "task-1")
    models.release(lease)
    assert lease.endpoint == A
    lease.ledger.reset([Unit("Request:", (1, 2))])
    models.mark_down(A, "it failed its health check: refused")
    moved = models.acquire("chat", "task-1")
    models.release(moved)
    assert moved.endpoint == B
    assert moved.moved == f"left {A}: it failed its health check: refused"
    assert len(moved.ledger) == 0  # a fresh prefix: the other server holds none of it
    # It stays on B (and says nothing more) even when A is back.
    models.mark_up(A)
    stays = models.acquire("chat", "task-1")
    models.release(stays)
    assert stays.endpoint == B and not stays.moved


def test_with_every_endpoint_down_they_are_tried_anyway() -> None:
    models = pool(A, B)
    models.mark_down(A, "down")
    models.mark_down(B, "down")
    lease = models.acquire("chat", "task-1")
    models.release(lease)
    assert lease.endpoint in (A, B)
    assert models.healthy("chat") == []


def test_calls_of_no_task_keep_no_ledger() -> None:
    models = pool(A, slots=2)
    lease = models.acquire("chat")
    lease.ledger.reset([Unit("x", (1,))])
    models.release(lease)
    assert len(models.acquire("chat").ledger) == 0


def test_a_call_of_no_task_goes_to_a_slot_no_task_holds_while_there_is_one() -> None:
    models = pool(A, slots=2)
    task = models.acquire("chat", "task-1")
    models.release(task)
    for _ in range(3):
        # The task's slot becomes the one idle the longest; calls of no task still stay off it.
        loose = models.acquire("chat")
        models.release(loose)
        assert loose.slot != task.slot


def test_models_yaml_takes_one_endpoint_or_a_list(tmp_path: Path) -> None:
    listed = tmp_path / "models.yaml"
    listed.write_text(f"roles:\n  chat:\n    endpoints: [{A}, {B}]\n    model: m\n")
    chat = load_models_config(listed).require("chat")
    assert chat.endpoints == [A, B] and chat.endpoint == A
    single = tmp_path / "single.yaml"
    single.write_text(f"roles:\n  chat:\n    endpoint: {A}\n    model: m\n")
    assert load_models_config(single).require("chat").endpoints == [A]
    for body, expected in (
        (f"    endpoint: {A}\n    endpoints: [{B}]\n", "not both"),
        ("    endpoints: []\n", "needs an `endpoint`"),
        (f"    endpoints: [{A}, {A}]\n", "the same URL twice"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"roles:\n  chat:\n{body}    model: m\n")
        with pytest.raises(ConfigError, match=expected) as refused:
            load_models_config(bad)
        assert f"{bad}:" in str(refused.value)
