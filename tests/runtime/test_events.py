"""The typed event vocabulary: the runtime's classes match the proto's payload messages, logs
written in the shapes of earlier runtimes still load (over real gRPC, from real SQLite), and the
loop reads a task's log once per turn, not at every step."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.approvals.v1 import approvals_pb2
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from google.protobuf import json_format

from services.common.vocabulary import REST_STATUSES, ApprovalState
from services.runtime import events as ev
from services.runtime.config import Settings
from services.runtime.directives import DirectiveSchema
from services.runtime.loop import RuntimeLoop
from services.runtime.model_client import ModelClient
from services.runtime.models_config import load_models_config
from services.runtime.records import EventRecord
from services.runtime.server import create_server, event_to_proto
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore
from services.runtime.turn import TurnState
from tests.scripted_model import ScriptedModel

PAYLOAD_FIELDS = [f.name for f in common_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields]


def _keys(cls: type[Any]) -> set[str]:
    return {"from" if item.name == "from_" else item.name for item in dataclasses.fields(cls)}


def test_every_event_type_has_one_payload_message_with_the_same_fields() -> None:
    types = {name.removeprefix("EVENT_TYPE_").lower() for name in common_pb2.EventType.DESCRIPTOR.values_by_name} - {"unspecified"}
    assert set(PAYLOAD_FIELDS) == types == set(ev.PAYLOADS)
    for name in PAYLOAD_FIELDS:
        message = common_pb2.Event.DESCRIPTOR.fields_by_name[name].message_type
        assert message is not None
        assert {f.name for f in message.fields} == _keys(ev.PAYLOADS[name]), name
    nested = {"ClientFunction": "FunctionSpec", "Usage": "ModelUsage", "RecalledMemory": "RecalledMemory"}
    for cls_name, message_name in nested.items():
        message = common_pb2.DESCRIPTOR.message_types_by_name[message_name]
        assert {f.name for f in message.fields} == _keys(getattr(ev, cls_name)), cls_name


def test_the_shared_words_mirror_the_proto_enums() -> None:
    approval_words = {name.removeprefix("APPROVAL_STATE_").lower() for name in approvals_pb2.ApprovalState.DESCRIPTOR.values_by_name}
    assert {state.value for state in ApprovalState} == approval_words - {"unspecified"}
    assert REST_STATUSES <= {status.value for status in TaskStatus}


def test_a_payload_survives_the_store_and_unknown_or_missing_keys_are_tolerated() -> None:
    recalled = ev.MemoryRecalled(
        query="q", automatic=True, memory_ids=("m1",), memories=(ev.RecalledMemory("m1", "tea", 0.9, "task"),),
    )
    kind, data = ev.entry(recalled)
    assert kind == "memory_recalled" and ev.parse(kind, json.loads(json.dumps(data))) == recalled
    assert "error" not in data  # a field that is None is not written
    assert ev.parse("status_changed", {"from": "running", "to": "completed"}) == ev.StatusChanged("running", "completed")
    assert ev.parse("tool_result", {"call_id": "c", "ok": True, "gone": 1}) == ev.ToolResult(call_id="c", ok=True)
    assert ev.parse("no_such_type", {"x": 1}) == ev.Unknown("no_such_type", {"x": 1})


# Rows as the runtime wrote them before payloads had types: one finished turn, with nulls,
# keys this runtime no longer writes, a reply-schema answer (a JSON object as the message) and
# a skill that failed to load.
OLD_TASK = "0123456789abcdef0123456789abcdef"
OLD_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("task_created", {"message": "plan the trip"}),
    ("user_message", {"text": "plan the trip", "reply_schema": {"type": "object"}}),
    ("status_changed", {"from": "pending", "to": "running", "reason": "user_message"}),
    ("skill_used", {"skill": "travel", "error": "no skill named travel"}),
    ("model_call", {
        "role": "chat", "model": "scripted", "output": '{"action": "finish", "message": {"days": 3}}',
        "latency_ms": 12.5, "first_token_ms": None, "finish_reason": "stop",
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "cached_prompt_tokens": 0}, "timings": {},
    }),
    ("directive", {"action": "finish", "message": {"days": 3}, "raw": '{"action": "finish", "message": {"days": 3}}'}),
    ("assistant_message", {"text": '{"days": 3}', "final": True}),
    ("status_changed", {"from": "running", "to": "completed", "reason": "finish", "legacy": True}),
]


OLD_SCHEMA = """
CREATE TABLE tasks (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, title TEXT NOT NULL, create_time TEXT NOT NULL,
    update_time TEXT NOT NULL, last_reply TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
    steps INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, cached_prompt_tokens INTEGER NOT NULL DEFAULT 0,
    pending_approval_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE events (
    task_id TEXT NOT NULL REFERENCES tasks (id), seq INTEGER NOT NULL, type TEXT NOT NULL,
    create_time TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (task_id, seq)
);
"""


def write_old_database(path: Path) -> None:
    """A runtime database written with raw SQL, in the schema and shapes of earlier runtimes."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        now = "2026-11-30T10:00:00+00:00"
        db.execute(
            "INSERT INTO tasks (id, status, title, create_time, update_time, last_reply, steps, prompt_tokens,"
            " completion_tokens) VALUES (?, 'completed', 'plan the trip', ?, ?, ?, 1, 40, 9)",
            (OLD_TASK, now, now, '{"days": 3}'),
        )
        for seq, (kind, data) in enumerate(OLD_EVENTS, start=1):
            db.execute(
                "INSERT INTO events (task_id, seq, type, create_time, data) VALUES (?, ?, ?, ?, ?)",
                (OLD_TASK, seq, kind, now, json.dumps(data)),
            )


@pytest.fixture
async def old_stub(runtime_settings: Settings) -> AsyncIterator[runtime_pb2_grpc.RuntimeServiceAsyncStub]:
    write_old_database(runtime_settings.database)
    server = await create_server(runtime_settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield runtime_pb2_grpc.RuntimeServiceStub(channel)
    finally:
        await server.stop(grace=1.0)


async def test_a_log_written_by_an_earlier_runtime_lists_with_typed_payloads(
    old_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub,
) -> None:
    reply = await old_stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=OLD_TASK))
    events = list(reply.events)
    assert [e.WhichOneof("payload") for e in events] == [kind for kind, _ in OLD_EVENTS]
    # `data` is what was stored, unchanged, for clients that read it.
    assert [json_format.MessageToDict(e.data) for e in events] == [data for _, data in OLD_EVENTS]
    call, directive, done = events[4].model_call, events[5].directive, events[7].status_changed
    assert call.usage.prompt_tokens == 40 and not call.HasField("first_token_ms")
    assert json_format.MessageToDict(directive.message) == {"days": 3}
    assert events[3].skill_used.error == "no skill named travel"
    assert (getattr(done, "from"), done.to) == ("running", "completed")
    assert events[1].user_message.HasField("reply_schema") and not events[1].user_message.HasField("memory")


async def test_a_log_written_by_an_earlier_runtime_replays_and_streams(
    old_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub,
) -> None:
    replayed = await old_stub.ReplayTask(runtime_pb2.ReplayTaskRequest(task_id=OLD_TASK))
    assert replayed.matches, replayed.mismatch
    assert json.loads(replayed.directives[0]) == {"action": "finish", "message": {"days": 3}}
    streamed = [e async for e in old_stub.StreamTaskEvents(runtime_pb2.StreamTaskEventsRequest(task_id=OLD_TASK))]
    assert len(streamed) == len(OLD_EVENTS) and streamed[-1].status_changed.to == "completed"


SAMPLES: list[ev.Payload] = [
    ev.StatusChanged(from_="running", to="completed", reason="finish"),
    ev.UserMessage(text="hi", skill="notes", memory=False, reply_schema={"type": "object"},
                   client_functions=(ev.ClientFunction("lookup", "find", {"type": "object"}),)),
    ev.ModelCall(role="chat", output="{}", latency_ms=1.5, first_token_ms=0.5, usage=ev.Usage(3, 2, 1),
                 timings={"prompt_n": 3}, cut_off="length", purpose="compaction", stage="fill"),
    ev.Directive(action="finish", message={"days": 3}, raw="{}"),
    ev.Directive(action="read_skill_file", skill="notes", path="a.md", part=2, raw="{}"),
    ev.ToolResult(call_id="c", tool="t", ok=False, result={"x": [1]}, error="no", code="DENIED", denied=True,
                  interrupted=False, duration_ms=2.0),
    ev.SkillUsed(skill="s", body="b", part=1, parts=2, allowed_tools=("a",), pre_approved_tools=("a",),
                 files=("f.md",), min_tool_calls=1),
    ev.MemoryRecalled(query="q", automatic=True, memory_ids=("m",), memories=(ev.RecalledMemory("m", "t", 0.5, "task"),)),
    ev.TaskResumed(from_seq=9),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda payload: payload.type)
def test_the_typed_payload_is_the_proto_json_mapping_of_the_stored_data(payload: ev.Payload) -> None:
    event = EventRecord("t", 1, payload.type, datetime.now(UTC), ev.to_data(payload))
    expected = common_pb2.Event()
    json_format.ParseDict(ev.to_data(payload), getattr(expected, payload.type))
    assert getattr(event_to_proto(event), payload.type) == getattr(expected, payload.type)
    assert event.payload == payload


def test_a_value_the_proto_cannot_hold_leaves_only_data() -> None:
    event = EventRecord("t", 1, "tool_call", datetime.now(UTC), {"call_id": "c", "tool": "x", "arguments": [1, 2]})
    message = event_to_proto(event)
    assert message.WhichOneof("payload") is None
    assert json_format.MessageToDict(message.data)["arguments"] == [1, 2]


class CountingStore(TaskStore):
    """The real store, counting reads of a task's log."""

    reads = 0

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]:
        self.reads += 1
        return await super().list_events(task_id, after_seq=after_seq, limit=limit)


async def test_a_turn_reads_the_log_once_and_counts_each_decision_as_one_step(
    runtime_settings: Settings, scripted_model: ScriptedModel,
) -> None:
    settings = runtime_settings.model_copy(update={"max_steps": 6, "max_repairs": 3})
    # Two unusable outputs, then an answer: three steps, three model calls, one read of the log.
    scripted_model.script(['{"action": "respo', "not json", {"action": "respond", "message": "Hello"}])
    counting = await CountingStore.open(settings.database)
    assert isinstance(counting, CountingStore)
    models = ModelClient(load_models_config(settings.models_file))
    try:
        loop = RuntimeLoop(settings, counting, models, DirectiveSchema.load(settings.directive_schema), None)
        task, _ = await counting.open_task({"text": "hi"})
        counting.reads = 0
        await loop.run_turn(task.id)
        assert counting.reads == 1
        done = await counting.get_task(task.id)
        assert done.status.value == "completed" and done.last_reply == "Hello"
        assert done.steps == 3
        log = await counting.list_events(task.id, limit=100)
        turn = TurnState.from_log(task.id, log)
        assert turn.steps == 3 and turn.message == ev.UserMessage(text="hi")
        assert turn.tokens_spent == done.prompt_tokens + done.completion_tokens > 0
    finally:
        await models.close()
        await counting.close()


async def test_the_token_budget_counts_the_calls_the_turn_carries(
    runtime_settings: Settings, scripted_model: ScriptedModel,
) -> None:
    # Each unusable output spends tokens; the budget stops the turn before a third model call.
    settings = runtime_settings.model_copy(update={"max_steps": 6, "max_repairs": 5, "token_budget": 1})
    scripted_model.script(["not json", "not json", {"action": "respond", "message": "late"}])
    store = await TaskStore.open(settings.database)
    models = ModelClient(load_models_config(settings.models_file))
    try:
        loop = RuntimeLoop(settings, store, models, DirectiveSchema.load(settings.directive_schema), None)
        task, _ = await store.open_task({"text": "hi"})
        await loop.run_turn(task.id)
        failed = await store.get_task(task.id)
        assert failed.status is TaskStatus.FAILED and "token budget of 1 spent" in failed.error
        assert failed.steps == 1 and len(scripted_model.requests) == 1
    finally:
        await models.close()
        await store.close()
