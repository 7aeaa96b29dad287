"""The context builder: an append-only prompt, capped results and memories, compaction."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from services.runtime.context import MEMORY_CHARS, RESULT_CHARS, Catalogue, build_messages
from services.runtime.store import EventRecord

CATALOGUE = Catalogue(tools=(("list_dir", "Lists a folder."),), skills=(("demo", "A demo skill."),),
                      actions=("respond", "finish", "call_tool"))


def log(*entries: tuple[str, dict[str, Any]]) -> list[EventRecord]:
    now = datetime.now(UTC)
    return [EventRecord("t", seq, kind, now, data) for seq, (kind, data) in enumerate(entries, start=1)]


def test_each_step_only_appends_to_the_previous_prompt() -> None:
    events = log(
        ("user_message", {"text": "hi"}),
        ("directive", {"action": "call_tool", "raw": '{"action":"call_tool","tool":"list_dir","arguments":{}}'}),
        ("tool_call", {"call_id": "c", "tool": "list_dir", "arguments": {}}),
        ("tool_result", {"call_id": "c", "ok": True, "result": {"entries": ["a"]}}),
        ("directive", {"action": "respond", "raw": '{"action":"respond","message":"a"}'}),
    )
    prompts = [build_messages("sys", CATALOGUE, events[:n]) for n in range(1, len(events) + 1)]
    for shorter, longer in itertools.pairwise(prompts):
        assert longer[: len(shorter)] == shorter
    system = prompts[0][0]["content"]
    assert "list_dir: Lists a folder." in system and "demo: A demo skill." in system
    assert prompts[-1][2] == {"role": "assistant", "content": events[1].data["raw"]}
    assert "Result of list_dir" in prompts[-1][3]["content"]


def test_long_tool_results_and_memories_are_clipped_and_say_so() -> None:
    events = log(
        ("user_message", {"text": "hi"}),
        ("tool_call", {"call_id": "c", "tool": "read_file", "arguments": {}}),
        ("tool_result", {"call_id": "c", "ok": True, "result": {"text": "x" * 10_000}}),
        ("memory_recalled", {"automatic": True, "memories": [{"id": "m", "text": "y" * 10_000, "score": 1.0}]}),
    )
    messages = build_messages("sys", CATALOGUE, events)
    result, memories = messages[2]["content"], messages[3]["content"]
    assert len(result) < RESULT_CHARS + 100 and "more characters]" in result
    assert len(memories) < MEMORY_CHARS + 100 and "more characters]" in memories


def test_a_compaction_summary_stands_in_for_the_events_it_covers() -> None:
    events = log(
        ("user_message", {"text": "first"}),
        ("directive", {"action": "respond", "raw": "old answer"}),
        ("user_message", {"text": "second"}),
        ("context_compacted", {"summary": "The user said first.", "up_to_seq": 2}),
    )
    contents = [m["content"] for m in build_messages("sys", CATALOGUE, events)]
    assert "first" not in contents and "old answer" not in contents
    assert contents[1] == "Summary of the conversation so far: The user said first."
    assert contents[2] == "second"


def test_automatic_recall_failures_stay_out_of_the_prompt_but_asked_ones_do_not() -> None:
    events = log(
        ("user_message", {"text": "hi"}),
        ("memory_recalled", {"automatic": True, "error": "embeddings are disabled"}),
        ("memory_recalled", {"automatic": False, "error": "embeddings are disabled"}),
    )
    contents = [m["content"] for m in build_messages("sys", CATALOGUE, events)]
    assert contents[1:] == ["hi", "Memory search failed: embeddings are disabled"]
