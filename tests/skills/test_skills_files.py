"""Progressive disclosure (GetSkill gives the body and the file list, GetSkillFile one file when
asked) and confinement of GetSkillFile to the skill's own folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import grpc
from ducklm.skills.v1 import skills_pb2

from services.skills.config import Settings


async def test_get_skill_gives_body_and_files(skills_service: Any) -> None:
    skill = await skills_service.stub.GetSkill(skills_pb2.GetSkillRequest(name="with-resources"))
    assert skill.name == "with-resources"
    assert skill.body == "Run `scripts/run.sh`; see `references/guide.md`.\n"
    assert list(skill.files) == [
        "assets/template.txt",
        "references/deep/more.md",
        "references/guide.md",
        "scripts/run.sh",
    ]


async def test_get_skill_file_gives_the_file_only_when_asked(skills_service: Any) -> None:
    reply = await skills_service.stub.GetSkillFile(
        skills_pb2.GetSkillFileRequest(name="with-resources", path="references/deep/more.md")
    )
    assert reply.content == b"more\n"
    reply = await skills_service.stub.GetSkillFile(
        skills_pb2.GetSkillFileRequest(name="with-resources", path="./scripts/run.sh")
    )
    assert reply.content.startswith(b"#!/bin/sh")


async def test_paths_that_leave_the_skill_folder_or_name_no_file_are_refused(
    skills_service: Any, rpc_error: Any
) -> None:
    stub = skills_service.stub
    bad = {
        "../minimal/SKILL.md": grpc.StatusCode.INVALID_ARGUMENT,
        "references/../../minimal/SKILL.md": grpc.StatusCode.INVALID_ARGUMENT,
        "/etc/passwd": grpc.StatusCode.INVALID_ARGUMENT,
        ".": grpc.StatusCode.INVALID_ARGUMENT,
        ".git/config": grpc.StatusCode.INVALID_ARGUMENT,
        "references": grpc.StatusCode.INVALID_ARGUMENT,
        "references/deep": grpc.StatusCode.INVALID_ARGUMENT,
        "references\\guide.md": grpc.StatusCode.INVALID_ARGUMENT,
        "": grpc.StatusCode.INVALID_ARGUMENT,
        "references/absent.md": grpc.StatusCode.NOT_FOUND,
    }
    for path, code in bad.items():
        await rpc_error(
            stub.GetSkillFile(skills_pb2.GetSkillFileRequest(name="with-resources", path=path)), code
        )


async def test_links_out_of_the_skill_folder_are_refused_and_not_listed(
    skills_service: Any, rpc_error: Any, tmp_path: Path
) -> None:
    stub, folder = skills_service.stub, skills_service.settings.skills_dir / "with-resources"
    secret = tmp_path / "secret.txt"
    secret.write_text("do not hand me out\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inner.txt").write_text("also secret\n")
    os.symlink(secret, folder / "references" / "leak.md")
    os.symlink(outside, folder / "assets" / "out")
    # A link that stays inside the folder is fine.
    os.symlink("../references/guide.md", folder / "scripts" / "guide-link.md")

    for path in ("references/leak.md", "assets/out/inner.txt"):
        error = await rpc_error(
            stub.GetSkillFile(skills_pb2.GetSkillFileRequest(name="with-resources", path=path)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert "outside the skill folder" in (error.details() or "")
    inside = await stub.GetSkillFile(
        skills_pb2.GetSkillFileRequest(name="with-resources", path="scripts/guide-link.md")
    )
    assert inside.content == b"# Guide\n"
    skill = await stub.GetSkill(skills_pb2.GetSkillRequest(name="with-resources"))
    assert "references/leak.md" not in skill.files and "assets/out/inner.txt" not in skill.files
    assert "scripts/guide-link.md" in skill.files


async def test_skill_md_linked_from_outside_makes_the_skill_invalid(
    skills_service: Any, tmp_path: Path, rpc_error: Any
) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("---\nname: linked\ndescription: Lives outside.\n---\n")
    folder = skills_service.settings.skills_dir / "linked"
    folder.mkdir()
    os.symlink(elsewhere, folder / "SKILL.md")
    reply = await skills_service.stub.ListSkills(skills_pb2.ListSkillsRequest())
    assert "linked" not in [skill.name for skill in reply.skills]
    assert [(p.source, p.field) for p in reply.invalid_skills] == [("linked", "SKILL.md")]


async def test_unknown_or_malformed_skill_names(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    await rpc_error(stub.GetSkill(skills_pb2.GetSkillRequest(name="absent")), grpc.StatusCode.NOT_FOUND)
    await rpc_error(stub.GetSkill(skills_pb2.GetSkillRequest(name="")), grpc.StatusCode.INVALID_ARGUMENT)
    await rpc_error(
        stub.GetSkill(skills_pb2.GetSkillRequest(name="../etc")), grpc.StatusCode.INVALID_ARGUMENT
    )
    await rpc_error(
        stub.GetSkillFile(skills_pb2.GetSkillFileRequest(name="absent", path="references/guide.md")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_files_over_the_limit_are_not_served(
    skills_settings: Settings, start_skills: Any, rpc_error: Any
) -> None:
    settings = skills_settings.model_copy(update={"max_file_bytes": 10})
    (settings.skills_dir / "with-resources" / "assets" / "big.bin").write_bytes(b"x" * 11)
    async with start_skills(settings) as service:
        error = await rpc_error(
            service.stub.GetSkillFile(
                skills_pb2.GetSkillFileRequest(name="with-resources", path="assets/big.bin")
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert "11 bytes" in (error.details() or "")
        small = await service.stub.GetSkillFile(
            skills_pb2.GetSkillFileRequest(name="with-resources", path="assets/template.txt")
        )
        assert small.content == b"template\n"
