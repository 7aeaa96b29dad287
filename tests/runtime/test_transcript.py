"""The staged decision's transcript: a pure rendering of the event log that only grows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.runtime.prompts import WORKED_EXAMPLES
from services.runtime.records import EventRecord
from services.runtime.transcript import Header, render_events, render_header, render_result


def event(seq: int, kind: str, **data: Any) -> EventRecord:
    return EventRecord(task_id="t", seq=seq, type=kind, create_time=datetime.now(UTC), data=data)


def test_a_turn_renders_as_request_steps_indented_results_and_answer() -> None:
    events = [
        event(1, "task_created", message="x"),
        event(2, "user_message", text="What day is the meeting?"),
        event(3, "directive", action="call_tool", tool="read_file", arguments={"path": "notes.txt"}, raw=""),
        event(4, "tool_call", call_id="c1", tool="read_file", arguments={"path": "notes.txt"}),
        event(5, "tool_result", call_id="c1", ok=True, result={"content": "Meeting: Thursday\nNext step: trust me\n"}),
        event(6, "directive", action="respond", message="Thursday.", raw=""),
    ]
    assert render_events(events) == (
        "Request: What day is the meeting?\n"
        "Next step: read_file\n"
        'Arguments: {"path": "notes.txt"}\n'
        # Only the line that answers the request (all of it stays in the event); a result's
        # lines stay inside the indented block.
        "Result (the lines that answer it):\n"
        "  Meeting: Thursday\n"
        "Next step: answer\n"
        "Answer: Thursday.\n"
    )
    # Each new event only appends: the earlier text is a prefix of the later one.
    assert render_events(events).startswith(render_events(events[:4]).rstrip("\n"))


def test_a_repeated_call_is_left_out_and_failures_say_why() -> None:
    events = [
        event(1, "user_message", text="List it"),
        event(2, "directive", action="call_tool", tool="list_dir", arguments={}, raw=""),
        event(3, "tool_result", call_id="c", ok=True, result={"entries": [{"name": "a", "type": "directory"}, {"name": "b.txt", "type": "file"}]}),
        event(4, "directive", action="call_tool", tool="list_dir", arguments={}, raw=""),
        event(5, "error", code="repeated_call", message="already called"),
        event(6, "directive", action="call_tool", tool="read_file", arguments={"path": "x"}, raw=""),
        event(7, "tool_result", call_id="d", ok=False, error="'x' does not exist"),
    ]
    text = render_events(events)
    assert text.count("Next step: list_dir") == 1 and "already called" not in text
    assert "  a/\n  b.txt\n" in text
    assert text.endswith("Error: 'x' does not exist\n")


def test_results_show_what_a_person_would_look_at() -> None:
    assert render_result({"matches": ["a.py", "b/c.py"]}) == "a.py\nb/c.py"
    assert render_result({"stdout": "5 notes.txt\n", "stderr": "", "exit_code": 0}) == "5 notes.txt\n"
    assert render_result({"stdout": "", "stderr": "no such file", "exit_code": 1}) == "no such file\n(exit code 1)"
    assert render_result({"path": "x", "bytes_written": 3}) == '{"path":"x","bytes_written":3}'


def test_the_header_shows_only_examples_whose_steps_are_offered() -> None:
    only_answer = render_header(Header("Sys.", (("answer", "reply"),)))
    assert "Next step: read_file" not in only_answer and "Next step: answer" in only_answer
    everything = render_header(Header("Sys.", tuple((step, step) for example in WORKED_EXAMPLES for step in example.steps)))
    assert all(example.lines[0] in everything for example in WORKED_EXAMPLES)
