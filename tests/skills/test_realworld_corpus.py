"""A hundred and twenty skills as people bring them (tests/skills/realworld.py), loaded by the real
skills service, then used through the real runtime, tools and skills services with a scripted
model: every chat reaches its first model call, the catalogue stays within its budget, and a
40 KB body is shown in parts that the model reads on with `read_skill_file`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from services.common.server import GrpcServer
from services.common.testing import free_port
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from services.runtime.skill_catalogue import estimate_text_tokens
from services.skills.config import Settings
from services.skills.server import create_server as create_skills
from services.tools.config import Settings as ToolsSettings
from services.tools.server import create_server as create_tools
from tests.scripted_model import ScriptedModel
from tests.skills.conftest import SkillsService, running
from tests.skills.realworld import CorpusStats, write_corpus
from tests.waits import recorded_experiences

CONTEXT_WINDOW = 8192
REQUESTS = (
    "Extract the tables from this PDF file and merge the PDF documents",
    "Write unit tests with pytest for my parser module",
    "Review this pull request diff for security issues",
    "Name one colour.",
    "Plan a travel itinerary for three days in Lisbon with hotels",
    "Write a Dockerfile and a docker compose file for my app",
)


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, CorpusStats]:
    root = tmp_path / "skills"
    return root, write_corpus(root)


def _settings(tmp_path: Path, skills_dir: Path) -> Settings:
    return Settings(
        address="127.0.0.1:0",
        skills_dir=skills_dir,
        database=tmp_path / "data" / "skills.db",
        proposals_dir=tmp_path / "data" / "proposals",
        rescan_interval=0,
    )


@pytest.fixture
async def corpus_service(tmp_path: Path, corpus: tuple[Path, CorpusStats]) -> AsyncIterator[SkillsService]:
    async with running(_settings(tmp_path, corpus[0])) as service:
        yield service


async def test_the_corpus_loads_leniently_and_rejects_only_what_the_spec_forbids(
    corpus_service: SkillsService, corpus: tuple[Path, CorpusStats]
) -> None:
    _, stats = corpus
    assert stats.folders >= 100 and stats.long_bodies and stats.mismatched and stats.with_claude_tools
    reply = await corpus_service.stub.ListSkills(skills_pb2.ListSkillsRequest(page_size=500))
    by_name = {skill.name: skill for skill in reply.skills}
    assert len(by_name) == stats.valid
    assert {problem.source for problem in reply.invalid_skills} == {
        "Bad_Name", "no-description", "long-description", "double--hyphen"
    }
    # The same skill in two collections: each loads under its own folder's name, with a warning.
    mismatched = by_name[stats.mismatched[0]]
    assert [w.field for w in mismatched.warnings if w.field == "name"] == ["name"]
    extra = by_name[stats.with_extra_keys[0]]
    assert any("not an Agent Skills field" in w.message for w in extra.warnings)
    # Claude Code's names are mapped; WebFetch maps to nothing and is warned about.
    for name in stats.with_claude_tools:
        skill = by_name[name]
        assert skill.pre_approved_tools, skill.allowed_tools
        if any(tool.startswith("WebFetch") for tool in skill.allowed_tools):
            assert any("WebFetch" in w.message for w in skill.warnings)


async def test_files_outside_the_standard_folders_are_served(
    corpus_service: SkillsService, corpus: tuple[Path, CorpusStats]
) -> None:
    stub = corpus_service.stub
    skill = await stub.GetSkill(skills_pb2.GetSkillRequest(name="pdf"))
    assert {"forms.md", "workflows/main.md"} <= set(skill.files)
    for path in ("forms.md", "workflows/main.md", "templates/report.txt"):
        reply = await stub.GetSkillFile(skills_pb2.GetSkillFileRequest(name="pdf", path=path))
        assert reply.content
    long = await stub.GetSkill(skills_pb2.GetSkillRequest(name=corpus[1].long_bodies[0]))
    assert len(long.body) >= 40_000 and "END-OF-LONG-BODY" in long.body


class Stack:
    def __init__(self, runtime: runtime_pb2_grpc.RuntimeServiceAsyncStub, model: ScriptedModel, skills_address: str) -> None:
        self.runtime = runtime
        self.model = model
        self.skills_address = skills_address


@pytest.fixture
async def stack(tmp_path: Path, corpus: tuple[Path, CorpusStats]) -> AsyncIterator[Stack]:
    model = ScriptedModel()
    await model.start()
    servers: list[GrpcServer] = []
    try:
        servers.append(await create_tools(ToolsSettings(
            address="127.0.0.1:0", workspace_dir=tmp_path / "workspace", database_path=tmp_path / "tools.db"
        )))
        servers.append(await create_skills(_settings(tmp_path, corpus[0])))
        models_file = tmp_path / "models.yaml"
        models_file.write_text(yaml.safe_dump({"roles": {"chat": {
            "endpoint": model.endpoint, "model": "scripted", "context_window": CONTEXT_WINDOW, "max_tokens": 256,
        }}}))
        servers.append(await create_runtime(RuntimeSettings(
            address="127.0.0.1:0",
            database=tmp_path / "runtime.db",
            models_file=models_file,
            tools_address=servers[0].address,
            skills_address=servers[1].address,
            memory_address=f"127.0.0.1:{free_port()}",
            recall_top_k=0,
            max_steps=6,
        )))
        async with grpc.aio.insecure_channel(servers[2].address) as channel:
            yield Stack(runtime_pb2_grpc.RuntimeServiceStub(channel), model, servers[1].address)
    finally:
        for server in reversed(servers):
            await server.stop(grace=1.0)
        await model.stop()


def _skills_section(system: str) -> list[str]:
    lines = system.split("\n")
    if "Skills:" not in lines:
        return []
    start = lines.index("Skills:") + 1
    return [line for line in lines[start:] if line.startswith("- ")]


async def test_every_chat_reaches_the_model_with_a_catalogue_inside_its_budget(stack: Stack) -> None:
    budget = int(CONTEXT_WINDOW * RuntimeSettings().skill_catalogue_share)
    for request in REQUESTS:
        before = len(stack.model.requests)
        stack.model.script([{"action": "respond", "message": "done"}])
        reply = await stack.runtime.Chat(runtime_pb2.ChatRequest(message=request))
        assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED, (request, reply.task.error)
        assert len(stack.model.requests) == before + 1, "the first model call must happen"
        system = stack.model.requests[-1]["messages"][0]["content"]
        listed = _skills_section(system)
        assert sum(estimate_text_tokens(line) for line in listed) <= budget
        assert "other skills are not listed" in system
        schema = json.dumps(stack.model.requests[-1]["response_format"])
        if request == "Name one colour.":
            # Unrelated to every skill: none is offered, so none can be chosen by mistake.
            assert listed == [] and '"use_skill"' not in schema
        else:
            assert listed, request
    pdf_lines = _skills_section(stack.model.requests[0]["messages"][0]["content"])
    assert pdf_lines[0].startswith("- pdf") or "pdf" in pdf_lines[0]


async def test_a_40_kb_skill_is_shown_in_parts_and_read_on(stack: Stack, corpus: tuple[Path, CorpusStats]) -> None:
    long = corpus[1].long_bodies[0]
    stack.model.script([
        {"action": "read_skill_file", "skill": long, "path": "SKILL.md", "part": 99},
        {"action": "read_skill_file", "skill": long, "path": "workflows/main.md", "part": 1},
        {"action": "respond", "message": "done"},
    ])
    reply = await stack.runtime.Chat(runtime_pb2.ChatRequest(message="Help me with this", skill=long))
    assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED, reply.task.error
    first, second, third = stack.model.requests[-3:]
    shown = first["messages"][-1]["content"]
    assert f"Instructions of skill {long} (part 1 of" in shown and "read_skill_file" in shown
    assert len(shown) < 40_000 / 2
    assert sum(len(m["content"]) for m in first["messages"]) // 3 < CONTEXT_WINDOW * 0.75
    # Part 99 is past the end: the last part is shown, which holds the body's end.
    assert "END-OF-LONG-BODY" in second["messages"][-1]["content"]
    assert "Main workflow" in third["messages"][-1]["content"]


async def test_a_skill_that_lists_claude_code_tools_still_gets_every_tool(
    stack: Stack, corpus: tuple[Path, CorpusStats]
) -> None:
    name = corpus[1].with_claude_tools[0]
    stack.model.script([{"action": "call_tool", "tool": "make_dir", "arguments": {"path": "made"}}])
    reply = await stack.runtime.Chat(runtime_pb2.ChatRequest(message="Go", skill=name))
    schema: dict[str, Any] = stack.model.requests[-1]["response_format"]["json_schema"]["schema"]
    tools = {b["properties"]["tool"]["const"] for b in schema["oneOf"] if "tool" in b["properties"]}
    assert {"read_file", "write_file", "run_command", "make_dir"} <= tools
    # make_dir is outside the skill's allowed-tools, yet it runs (no whitelist); and being a
    # tool that asks for approval, it still asks (pre-approval never grants on its own).
    assert reply.task.status == common_pb2.TASK_STATUS_WAITING_APPROVAL, reply.task.error


async def test_reflection_sees_the_steps_and_cites_them_as_evidence(stack: Stack) -> None:
    stack.model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}},
        {"action": "finish", "message": "Nothing here."},
    ])
    task = (await stack.runtime.Chat(runtime_pb2.ChatRequest(message="List my files"))).task
    async with grpc.aio.insecure_channel(stack.skills_address) as channel:
        skills = skills_pb2_grpc.SkillsServiceStub(channel)
        (experience,) = await recorded_experiences(skills, task.id)
        assert experience.last_event_seq > 0
        stack.model.script([{"decision": "propose", "name": "list-files", "description": "Lists the workspace.",
                             "steps": ["Call list_dir on the folder."]}])
        reflected = await stack.runtime.Reflect(runtime_pb2.ReflectRequest(experience_ids=[experience.id]))
        prompt = stack.model.requests[-1]["messages"][1]["content"]
        assert 'call list_dir {"path": "."}' in prompt and "list_dir ok:" in prompt
        proposal = await skills.GetProposal(skills_pb2.GetProposalRequest(proposal_id=reflected.proposal_id))
    events = await stack.runtime.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task.id, page_size=100))
    kinds = {f"{task.id}:{e.seq}": e.type for e in events.events}
    assert proposal.event_refs and all(
        kinds[ref] in (common_pb2.EVENT_TYPE_TOOL_CALL, common_pb2.EVENT_TYPE_TOOL_RESULT) for ref in proposal.event_refs
    )
