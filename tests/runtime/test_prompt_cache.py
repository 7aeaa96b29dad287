"""Token-exact continuation with the real llama-server and the real SmolLM2 model: the staged
decision's second step re-evaluates only the tokens that are new (the tool's result and the
lines after it); everything the server evaluated and generated in step 1 comes from its cache."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.stack import ensure_llama_server, ensure_model
from services.common.config import repo_root
from services.common.testing import free_port
from services.runtime.completion_client import LlamaCompletions
from services.runtime.config import Settings
from services.runtime.model_stream import ModelCall
from services.runtime.models_config import ModelsConfig, load_models_config
from services.runtime.peers import ToolSpec, WorkspaceEntry
from services.runtime.records import EventRecord
from services.runtime.staged import PATH_KIND_KEY, Stage, StagedDecider, StepMenu
from services.runtime.transcript import render_events

pytestmark = pytest.mark.model

TOOLS = (
    ToolSpec("read_file", "Read a text file from the workspace.", {
        "type": "object", "properties": {"path": {"type": "string", PATH_KIND_KEY: "file"}}, "required": ["path"],
    }, read_only=True, requires_approval=False),
    ToolSpec("list_dir", "List the entries of a workspace folder.", {
        "type": "object", "properties": {"path": {"type": "string", PATH_KIND_KEY: "dir"}}, "required": [],
    }, read_only=True, requires_approval=False),
)
WORKSPACE = (WorkspaceEntry("notes.txt", False), WorkspaceEntry("todo.md", False), WorkspaceEntry("data", True))
REQUEST = "Read notes.txt and tell me what day the meeting with Dana is."
RESULT = {"content": "Team notes\nThe meeting with Dana is on Thursday at 3 pm.\nLunch order: 3 pizzas.\n"}


@pytest.fixture(scope="module")
def chat_config() -> Iterator[ModelsConfig]:
    """llama-server on the default model with the `chat` server's arguments from models.yaml."""
    port = free_port()
    env = {**os.environ, "DUCKLM_MODEL_PATH": str(ensure_model()), "DUCKLM_LLAMA_PORT": str(port)}
    config = load_models_config(repo_root() / "config" / "models.yaml", env)
    server = config.servers["chat"]
    process = subprocess.Popen(
        [str(ensure_llama_server()), "-m", server.model_path, "--host", "127.0.0.1", "--port", str(port), *server.args],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        yield config
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def completions(chat_config: ModelsConfig) -> AsyncIterator[LlamaCompletions]:
    root = chat_config.require("chat").endpoint.removesuffix("/v1")
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(600):
            try:
                if (await http.get(f"{root}/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process: there is no clock to inject
    client = LlamaCompletions(chat_config)
    try:
        yield client
    finally:
        await client.close()


def event(seq: int, kind: str, data: dict[str, Any]) -> EventRecord:
    return EventRecord(task_id="t", seq=seq, type=kind, create_time=datetime.now(UTC), data=data)


async def test_step_two_re_evaluates_only_the_new_tokens(completions: LlamaCompletions) -> None:
    settings = Settings()
    decider = StagedDecider(model=completions, system_prompt=settings.system_prompt, max_text_chars=300)
    menu = StepMenu(tools=TOOLS, memory=False, workspace=WORKSPACE, request=REQUEST)
    calls: list[ModelCall] = []

    async def record(call: ModelCall, stage: Stage) -> None:
        if stage != "calibrate":  # a call of no task (see below), not one of the task's prompt
            calls.append(call)

    events = [event(1, "user_message", {"text": REQUEST})]
    step_one = StepMenu(tools=TOOLS, tools_only=True, workspace=WORKSPACE, request=REQUEST)
    directive = await decider.decide(decider.header(menu) + "\n" + render_events(events), step_one, record,
                                     session="task-1")
    assert directive.action == "call_tool"
    first = len(calls)
    events += [
        event(2, "directive", {"action": directive.action, **directive.fields, "raw": directive.raw}),
        event(3, "tool_result", {"ok": True, "result": RESULT}),
    ]
    lease = completions.pool.acquire("chat", "task-1")
    completions.pool.release(lease)
    held = len(lease.ledger)
    await decider.decide(decider.header(menu) + "\n" + render_events(events), menu, record, session="task-1")
    step_two = calls[first:]
    assert step_two
    opening = step_two[0]
    # Everything step 1 left in the slot (its prompts and the generated arguments) is sent as
    # the same tokens, and the server serves them all from its cache.
    assert opening.prefix_tokens == held, (opening.prefix_tokens, held)
    assert opening.cached_prompt_tokens == held, opening.timings
    for call in step_two:
        new = call.prompt_tokens - call.prefix_tokens
        print(f"prompt {call.prompt_tokens} known {call.prefix_tokens} evaluated {call.timings.get('prompt_n')} new {new}")
        assert call.timings["prompt_n"] == new, call.timings
        assert call.slot == opening.slot >= 0
