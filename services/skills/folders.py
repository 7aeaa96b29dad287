"""Reads one skill folder on disk: its SKILL.md (judged by `validation`), the list of its files,
and one of those files, confined to the folder.

Everything here blocks on the filesystem; async callers run it in `asyncio.to_thread`. Nothing
here may return bytes from outside the skill's own folder, whatever links or `..` a path holds.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.skills.validation import Problem, SkillDocument, parse_skill_md

__all__ = [
    "MAX_SKILL_MD_BYTES",
    "RESOURCE_FOLDERS",
    "SKILL_FILE",
    "list_skill_files",
    "load_skill_folder",
    "read_skill_file",
]

SKILL_FILE = "SKILL.md"
# The optional folders of the Agent Skills format; GetSkillFile serves files only from these.
RESOURCE_FOLDERS = ("scripts", "references", "assets")
MAX_SKILL_MD_BYTES = 256 * 1024


def load_skill_folder(folder: Path) -> tuple[SkillDocument | None, list[Problem]]:
    """Reads and validates `folder`/SKILL.md; the name must equal the folder's name."""
    if not folder.is_dir():
        return None, [Problem(SKILL_FILE, f"{folder} is not a folder")]
    skill_md = folder / SKILL_FILE
    if not skill_md.is_file():
        if (folder / "skill.md").is_file():
            return None, [Problem(SKILL_FILE, "is missing; found skill.md: rename it to SKILL.md")]
        return None, [Problem(SKILL_FILE, "is missing: a skill folder needs a SKILL.md file")]
    if not _inside(skill_md.resolve(), folder.resolve()):
        return None, [Problem(SKILL_FILE, "is a link to a file outside the skill folder")]
    try:
        size = skill_md.stat().st_size
        if size > MAX_SKILL_MD_BYTES:
            return None, [Problem(SKILL_FILE, f"is {size} bytes; the most is {MAX_SKILL_MD_BYTES}")]
        data = skill_md.read_bytes()
    except OSError as exc:
        return None, [Problem(SKILL_FILE, f"cannot be read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(SKILL_FILE, f"is not UTF-8 text (bad byte at offset {exc.start})")]
    return parse_skill_md(text, folder.name)


def list_skill_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the regular files under scripts/, references/ and assets/ that
    stay inside the folder (links that lead out are left out), sorted."""
    root = folder.resolve()
    found: list[str] = []
    for sub in RESOURCE_FOLDERS:
        base = folder / sub
        if not base.is_dir() or not _inside(base.resolve(), root):
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for filename in filenames:
                path = Path(dirpath) / filename
                if path.is_file() and _inside(path.resolve(), root):
                    found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def read_skill_file(folder: Path, relative_path: str, *, max_bytes: int) -> bytes:
    """The bytes of `relative_path` (under scripts/, references/ or assets/) inside `folder`."""
    parts = _checked_parts(relative_path)
    target = folder.joinpath(*parts)
    resolved = target.resolve()
    if not _inside(resolved, folder.resolve()):
        raise PermissionDenied(
            f"{relative_path!r} leads outside the skill folder", reason="PATH_ESCAPES_SKILL"
        )
    if not resolved.exists():
        raise NotFound(f"the skill has no file {relative_path!r}")
    if not resolved.is_file():
        raise InvalidArgument(f"{relative_path!r} is not a regular file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise FailedPrecondition(
            f"{relative_path!r} is {size} bytes; the most served is {max_bytes}", reason="FILE_TOO_LARGE"
        )
    # Read the resolved path, so a link swapped after the check above is not followed.
    with open(resolved, "rb") as handle:
        return handle.read(max_bytes + 1)[:max_bytes]


def _checked_parts(relative_path: str) -> list[str]:
    if not relative_path:
        raise InvalidArgument("path is required")
    if "\x00" in relative_path or "\\" in relative_path:
        raise InvalidArgument("path must be a relative POSIX path without NUL or backslash")
    pure = PurePosixPath(relative_path)
    if pure.is_absolute():
        raise InvalidArgument(f"path {relative_path!r} must be relative to the skill folder")
    parts = [part for part in pure.parts if part != "."]
    if ".." in parts:
        raise InvalidArgument(f"path {relative_path!r} must not contain '..'")
    if len(parts) < 2 or parts[0] not in RESOURCE_FOLDERS:
        raise InvalidArgument(
            f"path {relative_path!r} must name a file under "
            + ", ".join(f"{sub}/" for sub in RESOURCE_FOLDERS)
            + " (the SKILL.md body comes from GetSkill)"
        )
    return parts


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)
