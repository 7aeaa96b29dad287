"""The command line: `python -m services.skills validate PATH...` prints every problem and exits
non-zero if any skill is invalid; with no arguments it serves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from services.common.config import repo_root
from services.common.testing import free_port, wait_for_health
from services.skills.__main__ import main

CORPUS = Path(__file__).parent / "corpus"


def test_valid_skills_print_ok_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "validate",
                str(CORPUS / "valid" / "minimal"),
                str(CORPUS / "valid" / "full-fields" / "SKILL.md"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{CORPUS / 'valid' / 'minimal'}: ok", f"{CORPUS / 'valid' / 'full-fields'}: ok"]


def test_a_skills_folder_is_checked_skill_by_skill(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CORPUS / "valid")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len([p for p in (CORPUS / "valid").iterdir() if p.is_dir()])
    assert all(line.endswith(": ok") for line in out)


def test_every_problem_is_printed_and_the_exit_is_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    several = CORPUS / "invalid" / "several-problems"
    assert main(["validate", "--strict", str(CORPUS / "valid" / "minimal"), str(several)]) == 1
    out = capsys.readouterr().out.splitlines()
    label = several / "several-problems"
    assert out[0].endswith("minimal: ok")
    assert [line.split(": ")[1] for line in out[1:-1]] == ["tags", "name", "name", "description"]
    assert all(line.startswith(f"{label}: ") for line in out[1:-1])
    assert out[-1] == "1 invalid skill"


def test_a_folder_without_skill_md_and_a_missing_path_are_problems(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = CORPUS / "invalid" / "missing-skill-md" / "missing-skill-md"
    assert main(["validate", str(missing), str(CORPUS / "nowhere")]) == 1
    out = capsys.readouterr().out
    assert f"{missing}: SKILL.md: is missing" in out
    assert f"{CORPUS / 'nowhere'}: path: does not exist" in out


def test_a_draft_file_is_checked_without_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    draft = tmp_path / "draft.md"
    draft.write_text("---\nname: any-name\ndescription: A draft.\n---\n")
    assert main(["validate", str(draft)]) == 0
    draft.write_text("---\nname: any-name\n---\n")
    assert main(["validate", str(draft)]) == 1
    assert f"{draft}: description: is required" in capsys.readouterr().out


def test_command_line_runs_as_a_module() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "services.skills", "validate", "skills"],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "skills/analyze-project: ok" in ok.stdout.splitlines()
    bad = subprocess.run(
        [sys.executable, "-m", "services.skills", "validate", str(CORPUS / "invalid" / "name-underscore")],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert (
        "analyze_project: name: 'analyze_project' has characters other than a-z, 0-9 and '-': '_'"
        in bad.stdout
    )
    usage = subprocess.run(
        [sys.executable, "-m", "services.skills", "validate"],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2 and "PATH" in usage.stderr


async def test_no_arguments_serves_until_terminated(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "DUCKLM_DATA_DIR": str(tmp_path), "DUCKLM_SKILLS_ADDRESS": address}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.skills",
        cwd=repo_root(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_health(address, service="ducklm.skills.v1.SkillsService", timeout=30)
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await skills_pb2_grpc.SkillsServiceStub(channel).ListSkills(
                skills_pb2.ListSkillsRequest()
            )
        assert "analyze-project" in [skill.name for skill in reply.skills]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert "skills listening on port" in out.decode()
    assert (tmp_path / "skills.db").is_file()
