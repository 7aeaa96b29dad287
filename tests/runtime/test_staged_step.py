"""One staged step as the loop asks for it: what the turn so far lets the next step offer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from services.runtime.model_client import ModelCall
from services.runtime.peers import Peers, WorkspaceEntry
from services.runtime.records import EventRecord
from services.runtime.staged import Stage, StagedDecider
from services.runtime.staged_step import decide_staged
from services.runtime.turn import TurnState
from tests.runtime.test_staged import CATALOGUE, WORKSPACE, FakeCompletions


def event(seq: int, kind: str, **data: Any) -> EventRecord:
    return EventRecord(task_id="t", seq=seq, type=kind, create_time=datetime.now(UTC), data=data)


async def _decide(events: list[EventRecord], model: FakeCompletions) -> Any:
    decider = StagedDecider(model=model, system_prompt="You are a test.", max_text_chars=200)

    async def record(call: ModelCall, stage: Stage) -> None:
        return None

    async def stream(text: str) -> None:
        return None

    turn = TurnState.from_log("t", events)
    return await decide_staged(decider, turn, CATALOGUE, [], forced=False, peers=None, record=record,
                               stream_answer=stream)


def _after(tool: str, result: dict[str, Any]) -> list[EventRecord]:
    return [
        event(1, "user_message", text="Find the CSV file and tell me what it holds."),
        event(2, "directive", action="call_tool", tool=tool, arguments={}, raw=""),
        event(3, "tool_call", call_id="c1", tool=tool, arguments={}),
        event(4, "tool_result", call_id="c1", tool=tool, ok=True, result=result),
    ]


async def test_after_a_search_that_found_something_the_step_reads_or_answers() -> None:
    # The model leans to listing again; once the search has found the file, listing is not offered.
    model = FakeCompletions(scores=[{"list_dir": -0.1, "find_files": -0.2, "read_file": -1.0, "answer": -3.0}],
                            texts=['{"path": "data/sales.csv"}'])
    directive = await _decide(_after("find_files", {"pattern": "**/*.csv", "matches": ["data/sales.csv"]}), model)
    assert directive.fields["tool"] == "read_file"


async def test_after_a_listing_the_step_may_look_further() -> None:
    model = FakeCompletions(scores=[{"list_dir": -0.1, "read_file": -1.0, "answer": -3.0}], texts=['{"path": "data"}'])
    directive = await _decide(_after("list_dir", {"path": ".", "entries": [{"name": "data", "type": "dir"}]}), model)
    assert directive.fields["tool"] == "list_dir"


async def test_a_request_only_to_find_is_answered_with_what_the_search_found() -> None:
    events = _after("find_files", {"pattern": "**/*.csv", "matches": ["data/sales.csv"]})
    events[0] = event(1, "user_message", text="Find all the CSV files.")
    model = FakeCompletions()  # no model call at all: the step answers, and the answer is exact
    directive = await _decide(events, model)
    assert directive.action == "respond" and directive.fields["message"] == "I found: data/sales.csv."
    assert model.prompts == []


class ListingPeers:
    """Only what a staged step asks of the peers: the workspace listing, counted."""

    def __init__(self) -> None:
        self.listings = 0

    async def list_workspace(self, task_id: str) -> list[WorkspaceEntry]:
        self.listings += 1
        return list(WORKSPACE)


async def test_the_workspace_is_listed_once_a_run_and_again_after_a_tool_that_may_change_files() -> None:
    peers = ListingPeers()
    decider = StagedDecider(model=FakeCompletions(scores=[{"read_file": -0.1, "answer": -3.0}] * 4,
                                                  texts=['{"path": "notes.txt"}'] * 4),
                            system_prompt="You are a test.", max_text_chars=200)

    async def record(call: ModelCall, stage: Stage) -> None:
        return None

    async def stream(text: str) -> None:
        return None

    async def step(turn: TurnState) -> None:
        await decide_staged(decider, turn, CATALOGUE, [], forced=False, peers=cast(Peers, peers), record=record,
                            stream_answer=stream)

    turn = TurnState.from_log("t", [event(1, "user_message", text="Read notes.txt, then write a summary.")])
    await step(turn)
    turn.add(event(2, "tool_result", call_id="c1", tool="read_file", ok=False, error="no"))
    await step(turn)
    assert peers.listings == 1  # a read changes no file: the listing stands
    turn.add(event(3, "tool_result", call_id="c2", tool="write_file", ok=False, error="no"))
    await step(turn)
    assert peers.listings == 2  # a write may have: listed again
    turn.add(event(4, "user_message", text="And now?"))
    await step(turn)
    assert peers.listings == 3  # a new turn lists anew
