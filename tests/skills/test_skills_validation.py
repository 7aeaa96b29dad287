"""The Agent Skills format rules, checked against the corpus in tests/skills/corpus.

corpus/valid/<name>/ are valid skills. corpus/invalid/<case>/ holds one skill folder and an
expected.json listing every problem it must produce in strict mode, as [field, part of the
message], in order. Lenient mode (the default) is tested in test_skills_lenient.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.skills.v1 import skills_pb2

from services.common.config import repo_root
from services.skills.folders import load_skill_folder
from services.skills.validation import KNOWN_FIELDS, Problem, check_name, declared_name, parse_skill_md

CORPUS = Path(__file__).parent / "corpus"
VALID = sorted(path for path in (CORPUS / "valid").iterdir() if path.is_dir())
INVALID = sorted(path for path in (CORPUS / "invalid").iterdir() if path.is_dir())


def _case_folder(case: Path) -> Path:
    (folder,) = [path for path in case.iterdir() if path.is_dir()]
    return folder


def _expected(case: Path) -> list[list[str]]:
    expected: list[list[str]] = json.loads((case / "expected.json").read_text())["problems"]
    return expected


@pytest.mark.parametrize("folder", VALID, ids=lambda path: path.name[:24])
def test_valid_corpus_skill_loads_with_no_problems(folder: Path) -> None:
    document, problems = load_skill_folder(folder)
    assert problems == []
    assert document is not None
    assert document.name == folder.name
    assert document.description.strip()


@pytest.mark.parametrize("case", INVALID, ids=lambda path: path.name)
def test_invalid_corpus_skill_reports_exactly_its_problems(case: Path) -> None:
    document, problems = load_skill_folder(_case_folder(case), strict=True)
    expected = _expected(case)
    assert document is None, "an invalid skill must never be half-loaded"
    assert [problem.field for problem in problems] == [field for field, _ in expected]
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message


def test_corpus_covers_every_rule() -> None:
    fields = {field for case in INVALID for field, _ in _expected(case)}
    # Every front-matter field, the front matter itself, the file, and an unknown key.
    assert set(KNOWN_FIELDS) | {"frontmatter", "SKILL.md", "author"} <= fields
    cases = {case.name for case in INVALID}
    for rule in (
        "name-uppercase",
        "name-underscore",
        "name-leading-hyphen",
        "name-trailing-hyphen",
        "name-consecutive-hyphens",
        "name-too-long",
        "name-folder-mismatch",
        "description-too-long",
        "compatibility-too-long",
        "duplicate-key",
        "unknown-field",
        "missing-skill-md",
        "not-utf8",
    ):
        assert rule in cases


def test_all_fields_are_read() -> None:
    document, _ = load_skill_folder(CORPUS / "valid" / "full-fields")
    assert document is not None
    assert document.license == "Apache-2.0"
    assert document.compatibility == "Needs the workspace file tools."
    assert document.metadata == {"author": "ducklm", "version": "1.0"}
    assert document.allowed_tools == ("list_dir", "read_file")
    assert document.body == "# Steps\n\n1. Do the thing.\n"


def test_allowed_tools_may_be_a_yaml_list() -> None:
    document, _ = load_skill_folder(CORPUS / "valid" / "tools-as-list")
    assert document is not None and document.allowed_tools == ("list_dir", "find_files")


def test_limits_are_inclusive() -> None:
    document, _ = load_skill_folder(CORPUS / "valid" / "at-the-limits")
    assert document is not None
    assert len(document.description) == 1024 and len(document.compatibility) == 500
    assert [len(path.name) for path in VALID if path.name.startswith("long-name-")] == [64]


def test_crlf_and_byte_order_mark_are_read_as_plain_text() -> None:
    document, _ = load_skill_folder(CORPUS / "valid" / "crlf-and-bom")
    assert document is not None
    assert document.name == "crlf-and-bom"
    assert "\r" not in document.body


def test_body_may_be_empty() -> None:
    document, _ = load_skill_folder(CORPUS / "valid" / "empty-body")
    assert document is not None and document.body == ""


def test_without_a_folder_the_name_need_not_match_anything() -> None:
    text = "---\nname: drafted\ndescription: A draft.\n---\nBody\n"
    assert parse_skill_md(text, folder_name=None)[1] == []
    assert parse_skill_md(text, folder_name="elsewhere", strict=True)[1][0].field == "name"
    lenient, problems = parse_skill_md(text, folder_name="elsewhere")
    assert problems == [] and lenient is not None and lenient.name == "elsewhere"
    assert [warning.field for warning in lenient.warnings] == ["name"]


def test_name_rules_each_report_their_own_problem() -> None:
    assert check_name("good-name-2") == []
    messages = [problem.message for problem in check_name("-Bad__name--")]
    assert len(messages) == 4  # upper case, '_', leading/trailing hyphen, '--'
    assert check_name("") == [Problem("name", "must not be empty")]


def test_declared_name_reads_names_of_invalid_drafts() -> None:
    assert declared_name("---\nname: Not_Valid\n---\n") == "Not_Valid"
    assert declared_name("no front matter") == ""
    assert declared_name("---\nname: [1, 2]\n---\n") == ""


def test_shipped_starter_skill_is_valid() -> None:
    folder = repo_root() / "skills" / "analyze-project"
    document, problems = load_skill_folder(folder)
    assert problems == []
    assert document is not None
    assert document.allowed_tools == ("list_dir", "find_files", "read_file", "stat_path")
    steps = [line for line in document.body.splitlines() if line[:2] in {f"{n}." for n in range(1, 10)}]
    assert len(steps) >= 5, "the body is short numbered steps"
    assert (folder / "references" / "build-files.md").is_file()


async def test_validate_rpc_checks_text_and_folders(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    text = (CORPUS / "invalid" / "name-consecutive-hyphens" / "a--b" / "SKILL.md").read_text()
    reply = await stub.ValidateSkill(skills_pb2.ValidateSkillRequest(skill_md=text, folder_name="a--b"))
    assert not reply.valid
    assert [(p.source, p.field) for p in reply.problems] == [("a--b", "name")]

    good = (CORPUS / "valid" / "minimal" / "SKILL.md").read_text()
    reply = await stub.ValidateSkill(
        skills_pb2.ValidateSkillRequest(skill_md=good, folder_name="other", strict=True)
    )
    assert [p.field for p in reply.problems] == ["name"]
    reply = await stub.ValidateSkill(skills_pb2.ValidateSkillRequest(skill_md=good, folder_name="other"))
    assert reply.valid and [p.field for p in reply.warnings] == ["name"]
    reply = await stub.ValidateSkill(skills_pb2.ValidateSkillRequest(skill_md=good))
    assert reply.valid and not reply.problems

    reply = await stub.ValidateSkill(skills_pb2.ValidateSkillRequest(name="minimal"))
    assert reply.valid
    broken = skills_service.settings.skills_dir / "Broken_One"
    broken.mkdir()
    (broken / "SKILL.md").write_text("---\nname: Broken_One\n---\n")
    reply = await stub.ValidateSkill(skills_pb2.ValidateSkillRequest(name="Broken_One"))
    assert not reply.valid
    assert {p.field for p in reply.problems} == {"name", "description"}
    assert {p.source for p in reply.problems} == {"Broken_One"}

    await rpc_error(
        stub.ValidateSkill(skills_pb2.ValidateSkillRequest(name="absent")), grpc.StatusCode.NOT_FOUND
    )
    await rpc_error(
        stub.ValidateSkill(skills_pb2.ValidateSkillRequest(name="../x")), grpc.StatusCode.INVALID_ARGUMENT
    )
    await rpc_error(stub.ValidateSkill(skills_pb2.ValidateSkillRequest()), grpc.StatusCode.INVALID_ARGUMENT)
