"""`python -m services.skills validate [--strict] PATH...`: prints every problem and warning of
each skill and exits non-zero if any is invalid. Uses the same validation as the service (lenient
unless --strict); reads only, writes nothing. Warnings never change the exit status.

A PATH may be a skill folder, its SKILL.md, a folder of skill folders (like `skills/`), or any
other Markdown file, which is checked as a draft (no folder whose name it must equal).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.skills.folders import RESOURCE_FOLDERS, SKILL_FILE, load_skill_folder
from services.skills.validation import Problem, SkillDocument, parse_skill_md

__all__ = ["Checked", "check_path", "validate_main"]

# (label, problems, warnings) for one skill; no problems means valid.
Checked = tuple[str, list[Problem], list[Problem]]


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.skills validate",
        description="Check skills against the Agent Skills format; exit 1 if any is invalid.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a skill folder, a SKILL.md, a folder of skill folders, or a draft .md file",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="reject what lenient loading lets through (extra front-matter keys, name/folder mismatch)",
    )
    args = parser.parse_args(argv)
    invalid = 0
    for path in args.paths:
        for label, problems, warnings in check_path(path, strict=args.strict):
            for warning in warnings:
                print(f"{label}: warning: {warning.field}: {warning.message}")
            if not problems:
                print(f"{label}: ok")
                continue
            invalid += 1
            for problem in problems:
                print(f"{label}: {problem.field}: {problem.message}")
    if invalid:
        print(f"{invalid} invalid skill{'s' if invalid != 1 else ''}")
    return 1 if invalid else 0


def check_path(path: Path, *, strict: bool = False) -> list[Checked]:
    """(label, problems, warnings) for each skill `path` stands for; no problems means valid."""
    if not path.exists():
        return [(str(path), [Problem("path", "does not exist")], [])]
    if path.is_file():
        if path.name == SKILL_FILE:
            return [_checked(str(path.parent), *load_skill_folder(path.parent, strict=strict))]
        return [_checked(str(path), *_check_draft(path, strict))]
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    # A skill folder holds a SKILL.md (or a misnamed skill.md) or only resource folders;
    # any other folder of folders is taken as a skills directory.
    looks_like_skill = (
        (path / SKILL_FILE).exists()
        or (path / "skill.md").exists()
        or all(child.name in RESOURCE_FOLDERS for child in children)
    )
    if looks_like_skill:
        return [_checked(str(path), *load_skill_folder(path, strict=strict))]
    return [_checked(str(child), *load_skill_folder(child, strict=strict)) for child in children]


def _checked(label: str, document: SkillDocument | None, problems: list[Problem]) -> Checked:
    return label, problems, list(document.warnings) if document is not None else []


def _check_draft(path: Path, strict: bool) -> tuple[SkillDocument | None, list[Problem]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(SKILL_FILE, f"is not UTF-8 text (bad byte at offset {exc.start})")]
    except OSError as exc:
        return None, [Problem(SKILL_FILE, f"cannot be read: {exc.strerror or exc}")]
    return parse_skill_md(text, folder_name=None, strict=strict)
