"""The runtime's choice of skills (relevance, budget, counting with the model's tokenizer), skill
bodies in parts, and the mapping of Claude Code tool names."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from services.common.errors import Unavailable
from services.runtime.events import SkillUsed
from services.runtime.model_client import ModelClient
from services.runtime.models_config import ModelsConfig
from services.runtime.peers import SkillSummary
from services.runtime.skill_catalogue import SkillCatalogue, catalogue_line, rank
from services.runtime.skill_pages import cut_part, render_skill_event
from services.skills.tool_names import map_allowed_tools, split_allowed_tools
from services.skills.validation import parse_skill_md
from tests.http_stub import http_stub

ANALYZE = SkillSummary(
    "analyze-project",
    "Looks at a project folder in the workspace (its file tree, languages, build files and README) and "
    "reports a short summary. Use when asked what a project is, what it is written in, how it is built "
    "or tested, or to get oriented in unfamiliar code.",
)
PDF = SkillSummary("pdf", "Extract text and tables from PDF files, fill PDF forms, merge and split PDF documents.")
TESTS = SkillSummary("unit-tests", "Write unit tests with pytest for a Python module, covering edge cases.")


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("What is this project written in?", ["analyze-project"]),
        ("how is this project built and tested?", ["analyze-project"]),
        ("Extract the tables from report.pdf", ["pdf"]),
        ("Write unit tests for parser.py", ["unit-tests"]),
        # Unrelated coding requests: no skill at all, not the nearest one.
        ("Write a Python function that reverses a string", []),
        ("Fix the bug in my code", []),
        ("Name one colour.", []),
        # Naming a skill outright is enough.
        ("use analyze-project", ["analyze-project"]),
    ],
)
def test_only_skills_that_fit_the_request_are_ranked(request_text: str, expected: list[str]) -> None:
    assert [skill.name for skill, _ in rank([ANALYZE, PDF, TESTS], request_text)] == expected


async def test_the_budget_cuts_the_list_and_counts_what_was_left_out() -> None:
    skills = [SkillSummary(f"pdf-{n}", f"Merge PDF documents and split PDF files, variant {n}.") for n in range(50)]
    counted: list[str] = []

    async def tokenizer(text: str) -> int:
        counted.append(text)
        return 20

    catalogue = SkillCatalogue(tokenizer)
    offered = await catalogue.offer([*skills, ANALYZE], "merge these PDF documents", budget_tokens=100)
    assert len(offered.skills) == 5 and offered.tokens == 100
    assert offered.left_out == 46 and offered.unrelated == 1
    again = await catalogue.offer([*skills, ANALYZE], "merge these PDF documents", budget_tokens=100)
    assert again == offered
    assert len(counted) == len(set(counted)), "each line is counted by the tokenizer once"


async def test_a_skill_the_person_asked_for_is_offered_whatever_its_relevance() -> None:
    offered = await SkillCatalogue().offer([ANALYZE, PDF], "Name one colour.", budget_tokens=1, always="pdf")
    assert [skill.name for skill in offered.skills] == ["pdf"] and offered.left_out == 1


async def test_a_failing_tokenizer_falls_back_to_the_estimate() -> None:
    async def broken(text: str) -> int:
        raise Unavailable("no tokenizer")

    offered = await SkillCatalogue(broken).offer([PDF], "split this PDF file", budget_tokens=1000)
    assert offered.skills == (PDF,) and offered.tokens == len(catalogue_line(PDF)) // 3 + 1


async def test_token_counts_come_from_llama_servers_tokenize_endpoint() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.path == "/tokenize":
            return web.json_response({"tokens": list(range(len(json.loads(await request.read())["content"].split())))})
        return web.Response(status=404)

    async with http_stub(handler) as base:
        config = ModelsConfig.model_validate({"roles": {"chat": {"endpoint": f"{base}/v1", "model": "m"}}})
        client = ModelClient(config)
        try:
            assert await client.count_tokens("chat", "three little words") == 3
        finally:
            await client.close()
    assert seen == ["/tokenize"]


async def test_a_long_body_is_cut_into_parts_at_line_breaks_that_together_are_the_whole() -> None:
    body = "".join(f"line {n} of the instructions\n" for n in range(2000))
    first, number, parts = await cut_part(body, 1, budget_tokens=500, count=None)
    assert number == 1 and parts > 1 and first.endswith("\n")
    pieces = [(await cut_part(body, n, 500, None))[0] for n in range(1, parts + 1)]
    assert "".join(pieces) == body
    assert all(len(piece) // 3 + 1 <= 500 for piece in pieces)
    shown = render_skill_event(SkillUsed(skill="big", body=first, part=1, parts=parts, files=("forms.md",)))
    assert f"(part 1 of {parts})" in shown and '"part": 2' in shown and "forms.md" in shown
    short, number, parts = await cut_part("short body", 3, budget_tokens=500, count=None)
    assert (short, number, parts) == ("short body", 1, 1)


def test_claude_code_tool_names_map_to_ducklm_tools() -> None:
    entries = split_allowed_tools("Read, Grep Bash(git add:*) Bash(git status:*),WebFetch mcp__github__x list_dir")
    assert entries == ["Read", "Grep", "Bash(git add:*)", "Bash(git status:*)", "WebFetch", "mcp__github__x", "list_dir"]
    mapping = map_allowed_tools(entries)
    assert mapping.tools == ("read_file", "stat_path", "find_files", "run_command", "list_dir")
    assert mapping.unknown == ("WebFetch", "mcp__github__x")


def test_validate_warns_about_unmappable_tool_names_and_keeps_the_skill() -> None:
    text = "---\nname: x-skill\ndescription: Does x.\nallowed-tools: Read WebSearch\n---\nBody\n"
    document, problems = parse_skill_md(text, "x-skill")
    assert problems == [] and document is not None
    assert document.pre_approved_tools == ("read_file", "stat_path")
    assert [w.field for w in document.warnings] == ["allowed-tools"] and "WebSearch" in document.warnings[0].message


def test_lenient_mode_keeps_extra_keys_and_strict_mode_rejects_them() -> None:
    text = "---\nname: x-skill\ndescription: Does x.\nargument-hint: [file]\ndisable-model-invocation: true\n---\nB\n"
    document, problems = parse_skill_md(text, "x-skill")
    assert problems == [] and document is not None
    assert document.extra_fields == {"argument-hint": "[file]", "disable-model-invocation": "true"}
    assert [w.field for w in document.warnings] == ["argument-hint", "disable-model-invocation"]
    strict, problems = parse_skill_md(text, "x-skill", strict=True)
    assert strict is None and [p.field for p in problems] == ["argument-hint", "disable-model-invocation"]
    # What the spec forbids stays forbidden in lenient mode.
    bad, problems = parse_skill_md("---\nname: Bad_Name\ndescription: x\n---\n", "Bad_Name")
    assert bad is None and problems
