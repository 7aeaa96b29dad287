"""`python -m services.skills validate PATH...`: prints every problem of each skill and exits
non-zero if any is invalid. Uses the same validation as the service; reads only, writes nothing.

A PATH may be a skill folder, its SKILL.md, a folder of skill folders (like `skills/`), or any
other Markdown file, which is checked as a draft (no folder whose name it must equal).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.skills.folders import RESOURCE_FOLDERS, SKILL_FILE, load_skill_folder
from services.skills.validation import Problem, parse_skill_md

__all__ = ["check_path", "validate_main"]


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
    args = parser.parse_args(argv)
    invalid = 0
    for path in args.paths:
        for label, problems in check_path(path):
            if not problems:
                print(f"{label}: ok")
                continue
            invalid += 1
            for problem in problems:
                print(f"{label}: {problem.field}: {problem.message}")
    if invalid:
        print(f"{invalid} invalid skill{'s' if invalid != 1 else ''}")
    return 1 if invalid else 0


def check_path(path: Path) -> list[tuple[str, list[Problem]]]:
    """(label, problems) for each skill `path` stands for; no problems means valid."""
    if not path.exists():
        return [(str(path), [Problem("path", "does not exist")])]
    if path.is_file():
        if path.name == SKILL_FILE:
            return [(str(path.parent), load_skill_folder(path.parent)[1])]
        return [(str(path), _check_draft(path))]
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    # A skill folder holds a SKILL.md (or a misnamed skill.md) or only resource folders;
    # any other folder of folders is taken as a skills directory.
    looks_like_skill = (
        (path / SKILL_FILE).exists()
        or (path / "skill.md").exists()
        or all(child.name in RESOURCE_FOLDERS for child in children)
    )
    if looks_like_skill:
        return [(str(path), load_skill_folder(path)[1])]
    return [(str(child), load_skill_folder(child)[1]) for child in children]


def _check_draft(path: Path) -> list[Problem]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(SKILL_FILE, f"is not UTF-8 text (bad byte at offset {exc.start})")]
    except OSError as exc:
        return [Problem(SKILL_FILE, f"cannot be read: {exc.strerror or exc}")]
    return parse_skill_md(text, folder_name=None)[1]
