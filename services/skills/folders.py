"""Reads one skill folder on disk: its SKILL.md (judged by `validation`), the list of its files,
and one of those files, confined to the folder.

The spec lets a skill folder hold any files (`scripts/`, `references/` and `assets/` are only
conventions), so every regular file inside the folder may be listed and read, except hidden ones
(a name starting with "."), which belong to version control and editors, not to the skill.

Everything here blocks on the filesystem; async callers run it in `asyncio.to_thread`. Nothing
here may return bytes from outside the skill's own folder, whatever links or `..` a path holds.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.skills.validation import Problem, SkillDocument, parse_skill_md

__all__ = [
    "MAX_LISTED_FILES",
    "MAX_SKILL_MD_BYTES",
    "RESOURCE_FOLDERS",
    "SKILL_FILE",
    "list_skill_files",
    "load_skill_folder",
    "read_skill_file",
]

SKILL_FILE = "SKILL.md"
# The optional folders the Agent Skills format names (a convention: any file may be served).
RESOURCE_FOLDERS = ("scripts", "references", "assets")
MAX_SKILL_MD_BYTES = 256 * 1024
# A folder with more files than this (a vendored repository) is listed only in part.
MAX_LISTED_FILES = 500


def load_skill_folder(folder: Path, *, strict: bool = False) -> tuple[SkillDocument | None, list[Problem]]:
    """Reads and validates `folder`/SKILL.md; the name must equal the folder's name (lenient
    mode loads it under the folder's name, with a warning)."""
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
    return parse_skill_md(text, folder.name, strict=strict)


def list_skill_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the regular, non-hidden files in the folder other than SKILL.md
    that stay inside it (links that lead out are left out), sorted; at most MAX_LISTED_FILES."""
    root = folder.resolve()
    found: list[str] = []
    # followlinks=False: a linked folder is not walked (its files could lie anywhere).
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            relative = path.relative_to(folder).as_posix()
            if relative == SKILL_FILE:
                continue
            if path.is_file() and _inside(path.resolve(), root):
                found.append(relative)
                if len(found) >= MAX_LISTED_FILES:
                    return sorted(found)
    return sorted(found)


def read_skill_file(folder: Path, relative_path: str, *, max_bytes: int) -> bytes:
    """The bytes of `relative_path`, any non-hidden file inside `folder` (SKILL.md included)."""
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
    if not parts:
        raise InvalidArgument(f"path {relative_path!r} names the skill folder itself, not a file")
    if any(part.startswith(".") for part in parts):
        raise InvalidArgument(f"path {relative_path!r} names a hidden file; skills serve only visible files")
    return parts


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)
