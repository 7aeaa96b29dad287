"""The registry over the skills folder: listing, and noticing skills added, changed or removed on
disk without a restart (hot reload), through the real server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import grpc
from ducklm.skills.v1 import skills_pb2

from services.skills.config import Settings
from services.skills.registry import SkillRegistry


async def _names(stub: Any) -> list[str]:
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    return [skill.name for skill in reply.skills]


async def test_list_gives_names_and_descriptions_without_bodies(skills_service: Any) -> None:
    reply = await skills_service.stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert [skill.name for skill in reply.skills] == ["full-fields", "minimal", "with-resources"]
    for skill in reply.skills:
        assert skill.description == "Does one small thing for the tests."
        assert skill.body == "" and list(skill.files) == []
    full = reply.skills[0]
    assert list(full.allowed_tools) == ["list_dir", "read_file"]
    assert dict(full.metadata) == {"author": "ducklm", "version": "1.0"}
    assert reply.next_page_token == "" and list(reply.invalid_skills) == []


async def test_skill_added_changed_and_removed_on_disk_is_seen_without_restart(
    skills_service: Any, write_skill: Any
) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    assert "fresh" not in await _names(stub)

    write_skill(skills_dir, "fresh", description="First words.")
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert {skill.name: skill.description for skill in reply.skills}["fresh"] == "First words."

    write_skill(skills_dir, "fresh", description="Second, longer words.", body="1. New step.\n")
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert {skill.name: skill.description for skill in reply.skills}["fresh"] == "Second, longer words."
    skill = await stub.GetSkill(skills_pb2.GetSkillRequest(name="fresh"))
    assert skill.body == "1. New step.\n"

    shutil.rmtree(skills_dir / "fresh")
    assert "fresh" not in await _names(stub)
    (skills_dir / "minimal" / "SKILL.md").unlink()
    assert "minimal" not in await _names(stub)


async def test_skill_that_turns_invalid_is_dropped_whole_and_reported(
    skills_service: Any, rpc_error: Any
) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    (skills_dir / "minimal" / "SKILL.md").write_text("---\nname: minimal\nauthor: me\n---\nBody\n")
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert "minimal" not in [skill.name for skill in reply.skills]
    # Lenient loading lets the extra key through; the missing description still rejects it.
    assert {(p.source, p.field) for p in reply.invalid_skills} == {("minimal", "description")}
    error = await rpc_error(
        stub.GetSkill(skills_pb2.GetSkillRequest(name="minimal")), grpc.StatusCode.NOT_FOUND
    )
    assert "invalid" in (error.details() or "")


async def test_folders_that_are_not_skills_are_reported_or_skipped(skills_service: Any) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    (skills_dir / "README.md").write_text("Not a skill folder, just a note.\n")
    (skills_dir / "empty-folder").mkdir()
    hidden = skills_dir / ".promote-half-built"
    hidden.mkdir()
    (hidden / "SKILL.md").write_text("---\nname: half-built\ndescription: x\n---\n")
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert [skill.name for skill in reply.skills] == ["full-fields", "minimal", "with-resources"]
    assert [(p.source, p.field) for p in reply.invalid_skills] == [("empty-folder", "SKILL.md")]


async def test_list_is_paged_and_invalid_skills_come_with_the_first_page(skills_service: Any) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    (skills_dir / "broken").mkdir()
    first = await stub.ListSkills(skills_pb2.ListSkillsRequest(page_size=2))
    assert [skill.name for skill in first.skills] == ["full-fields", "minimal"]
    assert [p.source for p in first.invalid_skills] == ["broken"]
    second = await stub.ListSkills(
        skills_pb2.ListSkillsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [skill.name for skill in second.skills] == ["with-resources"]
    assert second.next_page_token == "" and list(second.invalid_skills) == []


async def test_missing_skills_folder_lists_nothing_until_it_appears(
    tmp_path: Path, start_skills: Any, write_skill: Any
) -> None:
    settings = Settings(
        address="127.0.0.1:0",
        skills_dir=tmp_path / "not-yet",
        database=tmp_path / "skills.db",
        proposals_dir=tmp_path / "proposals",
        rescan_interval=0,
    )
    async with start_skills(settings) as service:
        assert await _names(service.stub) == []
        write_skill(settings.skills_dir, "late")
        assert await _names(service.stub) == ["late"]


async def test_rescans_are_throttled(skills_settings: Settings, write_skill: Any) -> None:
    now = [100.0]
    registry = SkillRegistry(skills_settings.skills_dir, rescan_interval=1.0, clock=lambda: now[0])
    before = set((await registry.snapshot()).skills)
    write_skill(skills_settings.skills_dir, "throttled")
    now[0] += 0.9
    # Within the interval the registry does not look at the disk again...
    assert set((await registry.snapshot()).skills) == before
    now[0] += 0.2
    # ...and after it, it does.
    assert "throttled" in (await registry.snapshot()).skills
