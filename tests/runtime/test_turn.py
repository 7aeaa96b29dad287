"""The turn's state as the loop carries it: what each committed event changes, and that a new
user message starts the count again."""

from __future__ import annotations

from datetime import UTC, datetime

from services.runtime import events as ev
from services.runtime.records import EventRecord
from services.runtime.turn import RecentTurns, TurnState


def _event(seq: int, payload: ev.Payload) -> EventRecord:
    return EventRecord("t", seq, payload.type, datetime.now(UTC), ev.to_data(payload))


def _log(*payloads: ev.Payload) -> list[EventRecord]:
    return [_event(seq, payload) for seq, payload in enumerate(payloads, start=1)]


def test_steps_calls_and_the_skill_belong_to_the_current_turn() -> None:
    log = _log(
        ev.UserMessage(text="first"),
        ev.Directive(action="call_tool", tool="list_dir", arguments={"path": "."}, raw="{}"),
        ev.ToolCall(call_id="c1", tool="list_dir", arguments={"path": "."}),
        ev.ToolResult(call_id="c1", tool="list_dir", ok=True, result={"entries": [{"name": "a"}]}),
        ev.Error(code="invalid_directive", message="bad", output="x"),
        ev.Directive(action="respond", message="done", raw="{}"),
        ev.AssistantMessage(text="done"),
        ev.UserMessage(text="second", skill="notes"),
        ev.SkillUsed(skill="notes", body="Read first.", min_tool_calls=1, pre_approved_tools=("read_file",)),
    )
    first = TurnState.from_log("t", log[:7])
    assert (first.start, first.steps, first.calls) == (1, 3, [("list_dir", '{"path": "."}')])
    assert first.made_call("list_dir", {"path": "."}) and not first.made_call("list_dir", {"path": "b"})
    assert first.follow_up() == "look" and first.skill is None and first.tools_called == ["list_dir"]
    second = TurnState.from_log("t", log)
    assert (second.start, second.steps, second.calls, second.last_result) == (8, 0, [], None)
    assert second.message is not None and second.message.skill == "notes" and second.is_new
    assert second.skill is not None and second.skill.seq == 9 and second.skill_needs_tool_calls()
    second.add(_event(10, ev.ToolCall(call_id="c2", tool="read_file", arguments={"path": "n"})))
    assert not second.skill_needs_tool_calls() and second.follow_up() == "free"


def test_a_repeated_call_makes_the_next_step_answer_and_a_model_call_begins_the_turn() -> None:
    log = _log(
        ev.UserMessage(text="again", memory=False),
        ev.ModelCall(output="{}", usage=ev.Usage(prompt_tokens=5, completion_tokens=2)),
        ev.Error(code="repeated_call", message="already called"),
    )
    turn = TurnState.from_log("t", log)
    assert turn.repeated_last_call() and not turn.is_new and not turn.wants_memory
    assert turn.tokens_spent == 7


async def test_the_next_turn_continues_from_the_kept_state_and_reads_only_what_came_after() -> None:
    log = _log(
        ev.UserMessage(text="first"),
        ev.Directive(action="respond", message="done", raw="{}"),
        ev.AssistantMessage(text="done"),
        ev.UserMessage(text="second"),
    )
    reads: list[int] = []

    async def read_after(seq: int) -> list[EventRecord]:
        reads.append(seq)
        return stored[seq:]

    recent = RecentTurns(keep=1)
    stored = log[:3]
    first = await recent.open("t", read_after)
    recent.keep(first)
    stored = log
    second = await recent.open("t", read_after)
    assert second is first and reads == [0, 3]
    assert (second.start, second.steps, second.message) == (4, 0, ev.UserMessage(text="second"))
    assert [event.seq for event in second.events] == [1, 2, 3, 4]


async def test_a_state_with_a_gap_or_pushed_out_is_read_whole_again() -> None:
    log = _log(ev.UserMessage(text="first"), ev.AssistantMessage(text="a"), ev.AssistantMessage(text="b"))
    reads: list[int] = []

    async def read_after(seq: int) -> list[EventRecord]:
        reads.append(seq)
        return log[seq:]

    recent = RecentTurns(keep=1)
    gapped = TurnState.from_log("t", [log[0], log[2]])  # seq 2 came from elsewhere while it ran
    recent.keep(gapped)
    assert (await recent.open("t", read_after)) is not gapped and reads == [0]
    recent.keep(TurnState.from_log("t", log))
    recent.keep(TurnState.from_log("u", log))  # keeps one: "t" is pushed out
    reads.clear()
    again = await recent.open("t", read_after)
    assert reads == [0] and [event.seq for event in again.events] == [1, 2, 3]
