"""The staged decision below the servers: step choice by calibrated first-token scores, fills
under each step's own schema, plain-text answers, against a fake of the completion protocol."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest

from services.runtime.completion_client import FLOOR_LOGPROB, StepScores
from services.runtime.directives import DirectiveError
from services.runtime.intents import stated_commands
from services.runtime.model_client import ModelCall, TokenCallback
from services.runtime.models_config import ModelsConfig, RoleConfig
from services.runtime.peers import ToolSpec, WorkspaceEntry, workspace_entries
from services.runtime.staged import Stage, StagedDecider, StepMenu, calibrated_choice, fill_schema
from services.tools.catalogue import TOOLS

CONFIG = ModelsConfig(roles={"chat": RoleConfig(endpoint="http://127.0.0.1:1/v1", model="fake")})
CATALOGUE = [ToolSpec(t.name, t.description, t.schema, t.risk.value == 1, t.risk.value != 1) for t in TOOLS]
WORKSPACE = workspace_entries(["notes.txt", "project", "project/calc.py", "project/test_calc.py", "data/sales.csv"])


class FakeCompletions:
    """Scores and completions laid down by the test; records every prompt and schema."""

    def __init__(self, scores: Sequence[StepScores] = (), texts: Sequence[str] = (), baseline: StepScores | None = None):
        self.scores = deque(scores)
        self.texts = deque(texts)
        self.baseline = baseline or {}
        self.prompts: list[str] = []
        self.schemas: list[dict[str, Any] | None] = []
        self.baseline_sessions: list[str] = []

    @property
    def config(self) -> ModelsConfig:
        return CONFIG

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False, session: str = "",
    ) -> ModelCall:
        self.prompts.append(prompt)
        self.schemas.append(json_schema)
        text = self.texts.popleft()
        if on_token is not None:
            await on_token(text)
        return ModelCall(role=role, model="fake", text=text, latency_ms=0.0, first_token_ms=None)

    async def first_token_scores(
        self, role: str, prompt: str, candidates: Sequence[str], *, session: str = "",
    ) -> tuple[StepScores, ModelCall]:
        call = ModelCall(role=role, model="fake", text="", latency_ms=0.0, first_token_ms=None)
        if prompt.endswith("Request: N/A\nNext step:"):
            self.baseline_sessions.append(session)
            return {name: self.baseline.get(name, -5.0) for name in candidates}, call
        self.prompts.append(prompt)
        scores = self.scores.popleft()
        return {name: scores.get(name, FLOOR_LOGPROB) for name in candidates}, call


async def decide(model: FakeCompletions, menu: StepMenu) -> tuple[Any, list[Stage]]:
    decider = StagedDecider(model=model, system_prompt="You are a test.", max_text_chars=200)
    stages: list[Stage] = []

    async def record(call: ModelCall, stage: Stage) -> None:
        stages.append(stage)

    prompt = decider.header(menu) + "\nRequest: " + menu.request + "\n"
    return await decider.decide(prompt, menu, record), stages


def test_calibration_cancels_a_fixed_lean_but_never_crowns_an_unseen_step() -> None:
    # answer is likelier in absolute terms, but the model leans to it with no request at all.
    assert calibrated_choice({"answer": -1.0, "read_file": -2.0}, {"answer": -0.5, "read_file": -4.0}) == "read_file"
    # A step whose first token is not among the likeliest cannot win on calibration alone.
    assert calibrated_choice({"answer": -3.0, "stat_path": FLOOR_LOGPROB}, {"answer": -1.0, "stat_path": FLOOR_LOGPROB}) == "answer"
    # A rare step gains at most the capped boost over the most favoured one.
    assert calibrated_choice({"answer": -1.0, "make_dir": -4.5}, {"answer": -1.0, "make_dir": -20.0}) == "answer"


async def test_a_tool_step_is_chosen_then_filled_with_a_path_the_request_names() -> None:
    model = FakeCompletions(scores=[{"read_file": -1.0, "answer": -3.0}], texts=['{"path": "notes.txt"}'])
    menu = StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request="What does notes.txt say?")
    directive, stages = await decide(model, menu)
    assert stages == ["calibrate", "choose", "fill"]
    assert directive.action == "call_tool"
    assert directive.fields == {"tool": "read_file", "arguments": {"path": "notes.txt"}}
    assert json.loads(directive.raw) == {"action": "call_tool", "tool": "read_file", "arguments": {"path": "notes.txt"}}
    # Only the named file is on offer; the transcript asks for the arguments after the step name.
    assert model.schemas[-1] == {
        "type": "object", "properties": {"path": {"enum": ["notes.txt"]}}, "required": ["path"], "additionalProperties": False,
    }
    assert model.prompts[-1].endswith("Next step: read_file\nArguments: ")


async def test_an_answer_is_plain_text_ending_on_a_whole_sentence() -> None:
    whole = "Paris is the capital of France. It has been for a long time, and it is known for its museums."
    model = FakeCompletions(scores=[{"answer": -0.1}], texts=[f"  {whole} It has a tower and" + " x" * 300])
    directive, stages = await decide(model, StepMenu(tools=CATALOGUE, request="Capital of France?"))
    assert stages == ["calibrate", "choose", "answer"]
    assert directive.action == "respond" and directive.message == whole
    # Cut off with no sentence end late enough: marked as cut, never silently.
    model = FakeCompletions(texts=["Paris. " + " ".join(f"word{n}" for n in range(100))])
    directive, _ = await decide(model, StepMenu(answer_only=True))
    assert directive.message.startswith("Paris. word0") and directive.message.endswith("…")


async def test_a_blank_answer_or_arguments_off_the_schema_are_refused_with_the_output() -> None:
    with pytest.raises(DirectiveError, match="blank"):
        await decide(FakeCompletions(texts=["   "]), StepMenu(answer_only=True))
    model = FakeCompletions(scores=[{"read_file": 0.0}], texts=['{"path": "/etc/passwd"}'])
    with pytest.raises(DirectiveError, match="do not fit"):
        await decide(model, StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request="read notes.txt"))


async def test_answer_only_skips_the_choice() -> None:
    model = FakeCompletions(texts=["Done."])
    directive, stages = await decide(model, StepMenu(tools=CATALOGUE, answer_only=True))
    assert stages == ["answer"] and directive.message == "Done."


def test_fill_schemas_keep_what_a_step_needs_and_nothing_else() -> None:
    by_name = {tool.name: tool for tool in CATALOGUE}
    # A folder argument with no folder named is the workspace root; a named folder is offered alone.
    assert fill_schema(by_name["list_dir"].arguments_schema, WORKSPACE, 200, "what is here?")["properties"] == {
        "path": {"enum": ["."]}
    }
    assert fill_schema(by_name["list_dir"].arguments_schema, WORKSPACE, 200, "list the data folder")["properties"] == {
        "path": {"enum": ["data"]}
    }
    # With nothing named, every existing file is a choice; folders never are for read_file.
    read = fill_schema(by_name["read_file"].arguments_schema, WORKSPACE, 200, "read something")
    assert set(read["properties"]["path"]["enum"]) == {"notes.txt", "project/calc.py", "project/test_calc.py", "data/sales.csv"}
    # A new file is a safe relative name; optional arguments (offset, limit, cwd, timeout) are dropped.
    write = fill_schema(by_name["write_file"].arguments_schema, WORKSPACE, 200, "write x")
    assert set(write["properties"]) == {"path", "content"} and write["properties"]["content"]["maxLength"] == 200
    assert "pattern" in write["properties"]["path"] and "x-ducklm-path" not in json.dumps(write)
    # With no listing, a glob is a short pattern of path characters, bounded in the pattern itself (a grammar
    # follows a pattern, not maxLength); so is a new path.
    glob = fill_schema(by_name["find_files"].arguments_schema, None, 200, "find the python files")
    assert set(glob["properties"]) == {"pattern"} and glob["properties"]["pattern"]["maxLength"] == 40
    assert re.fullmatch(glob["properties"]["pattern"]["pattern"].strip("^$"), "**/*.py")
    assert not re.fullmatch(glob["properties"]["pattern"]["pattern"].strip("^$"), "*.py " + "x" * 60)
    assert not re.fullmatch(write["properties"]["path"]["pattern"].strip("^$"), "a/" * 4 + "b")
    command = fill_schema(by_name["run_command"].arguments_schema, WORKSPACE, 200, "run ls")
    assert set(command["properties"]) == {"argv"} and command["properties"]["argv"]["maxItems"] == 8


def test_a_listing_knows_its_folders() -> None:
    entries = workspace_entries(["a", "a/b", "a/b/c.txt", "d.txt"])
    assert entries == [
        WorkspaceEntry("a", True), WorkspaceEntry("a/b", True), WorkspaceEntry("a/b/c.txt", False), WorkspaceEntry("d.txt", False),
    ]


@pytest.mark.parametrize(
    ("request_text", "listed", "readable"),
    [
        ("What does notes.txt say?", False, True),
        ("Summarise my notes", False, True),  # a file's name without its extension
        ("How many lines in calc.py?", False, True),  # a nested file by its name
        ("Find the CSV file.", False, False),  # no file known yet: find or list it first
        ("Create hello.txt saying hi.", False, False),  # a file that does not exist yet
        ("Say hello to me.", False, False),
        ("Find the CSV file.", True, True),  # a listing in this turn named the files
    ],
)
def test_reading_is_offered_only_once_a_file_is_known(request_text: str, listed: bool, readable: bool) -> None:
    menu = StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request=request_text, paths_listed=listed)
    assert ("read_file" in menu.steps()) is readable
    assert {"answer", "list_dir", "find_files"} <= set(menu.steps())
    # With no workspace listing, nothing is held back.
    assert "read_file" in StepMenu(tools=CATALOGUE, request=request_text).steps()


@pytest.mark.parametrize(
    ("request_text", "step"),
    [
        ("Run ls -l project", "run_command"),
        ("Please run git status.", "run_command"),
        ("Use the wc command to count the words in notes.txt", "run_command"),
        ("Make a new folder called archive.", "make_dir"),
        ("Create an empty directory named build", "make_dir"),
        ("Create a file called hello.txt that says hello.", "write_file"),
        ("Save 'call the bank' to reminder.txt", "write_file"),
        ("Use find_files to look for logs", "find_files"),
        ("Find all Python files.", "find_files"),
        ("Is there a PDF file somewhere?", "find_files"),
        ("Where can I find config files? Search everywhere", None),  # not said plainly enough
        ("Find out what day it is", None),
        ("Are there any .ini files? Tell me where.", "find_files"),
        # Not plain enough: the model chooses.
        ("What does the command ls do?", None),
        ("Create a summary of notes.txt in summary.md", None),  # notes.txt must be read first
        ("Write a poem about ducks.", None),
        ("Save notes.txt again", None),  # an existing file: its content is not in the request
        ("How do I run a marathon?", None),
    ],
)
def test_a_request_that_names_its_step_gets_it_on_its_first_step(request_text: str, step: str | None) -> None:
    first = StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request=request_text, first_step=True)
    # After a tool has run, the model chooses again among every step on offer.
    later = StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request=request_text)
    assert len(later.steps()) > 1
    assert first.steps() == ([step] if step else later.steps())


async def test_an_exact_answer_is_given_without_asking_the_model_to_word_it() -> None:
    model = FakeCompletions(scores=[{"answer": -0.1, "list_dir": -2.0}])
    menu = StepMenu(tools=CATALOGUE, request="What is here?", exact_answer="Your workspace holds: a.txt.")
    directive, stages = await decide(model, menu)
    assert stages == ["calibrate", "choose"]
    assert directive.fields == {"message": "Your workspace holds: a.txt."}


async def test_an_answer_that_loops_is_said_once() -> None:
    model = FakeCompletions(scores=[{"answer": -0.1}], texts=["Birdwatch; Birdwatch; Birdwatch; Birdwatch; Birdw"])
    directive, _ = await decide(model, StepMenu(tools=CATALOGUE, request="What is it about?"))
    assert directive.fields == {"message": "Birdwatch…"}  # said once, and marked as cut off


def test_a_new_entry_takes_the_name_the_request_gives_it() -> None:
    make_dir = next(tool for tool in CATALOGUE if tool.name == "make_dir")
    schema = fill_schema(make_dir.arguments_schema, WORKSPACE, 200, "Make a directory called backups.")
    assert schema["properties"]["path"] == {"enum": ["backups"]}
    unnamed = fill_schema(make_dir.arguments_schema, WORKSPACE, 200, "Make a directory for old logs.")
    assert "pattern" in unnamed["properties"]["path"]


@pytest.mark.parametrize(
    ("request_text", "commands"),
    [
        ("Run the command wc -l notes.txt.", [["wc", "-l", "notes.txt"]]),
        ("Run cat todo.md and show me the output.", [["cat", "todo.md"]]),
        ("Please run `git status` for me", [["git", "status"]]),
        ("Use the ls command to list the project folder.", [["ls"], ["ls", "project"]]),
        ("Run a quick check on everything", []),  # a description, not a command
        ("What does ls do?", []),
    ],
)
def test_a_command_the_request_types_out_is_the_one_offered(request_text: str, commands: list[list[str]]) -> None:
    assert stated_commands(request_text, [entry.path for entry in WORKSPACE]) == commands
    run = next(tool for tool in CATALOGUE if tool.name == "run_command")
    schema = fill_schema(run.arguments_schema, WORKSPACE, 200, request_text, (), commands)
    if commands:
        assert schema["properties"] == {"argv": {"enum": commands}}
    else:
        assert schema["properties"]["argv"]["type"] == "array"


@pytest.mark.parametrize(
    ("request_text", "writable"),
    [
        ("Say hello in a few words.", False),
        ("What is the capital of France?", False),
        ("Summarise notes.txt", False),
        ("Create hello.txt saying hi.", True),
        ("I need a new folder for the logs", True),
        ("Please add a line to todo.md", True),
    ],
)
def test_writing_is_offered_only_where_the_request_speaks_of_a_change(request_text: str, writable: bool) -> None:
    steps = StepMenu(tools=CATALOGUE, workspace=WORKSPACE, request=request_text).steps()
    assert ("write_file" in steps) is writable and ("make_dir" in steps) is writable


def test_a_glob_is_a_choice_among_the_kinds_of_file_there_are() -> None:
    find = next(tool for tool in CATALOGUE if tool.name == "find_files")
    schema = fill_schema(find.arguments_schema, WORKSPACE, 200, "Find all Python files, and any *.log")
    assert schema["properties"]["pattern"] == {"enum": ["**/*.log", "**/*.csv", "**/*.py", "**/*.txt"]}
    # With no listing, a bounded pattern that searches every folder.
    free = fill_schema(find.arguments_schema, None, 200, "Find all Python files")
    assert free["properties"]["pattern"]["pattern"].startswith(r"^\*\*/")


async def test_the_baseline_shares_the_tasks_slot_only_while_it_holds_nothing_of_the_task() -> None:
    menu = StepMenu(tools=CATALOGUE, request="What is here?")
    for fresh, expected in ((True, "task-1"), (False, "")):
        model = FakeCompletions(scores=[{"answer": -0.1, "list_dir": -2.0}], texts=["It is empty."])
        decider = StagedDecider(model=model, system_prompt="You are a test.", max_text_chars=200)

        async def record(call: ModelCall, stage: Stage) -> None:
            return None

        prompt = decider.header(menu) + "\nRequest: " + menu.request + "\n"
        await decider.decide(prompt, menu, record, session="task-1", fresh=fresh)
        assert model.baseline_sessions == [expected]
