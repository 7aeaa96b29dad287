"""The registry of skills in the skills folder, kept in step with the disk without a restart.

Each request first asks `_refresh`: at most once per `rescan_interval` it takes a cheap
fingerprint of the folder (every skill folder's and SKILL.md's mtime, size and inode) and, only
if that changed, re-reads every skill. A skill that fails validation is reported with its
problems and never served, not even in part. Folders whose names start with "." are skipped
(promotion builds its temporary folder under such a name). Lenient loading (the default) serves a
skill with warnings (validation.py says what it lets through); `strict` rejects those too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from services.common.errors import InvalidArgument, NotFound
from services.skills.folders import SKILL_FILE, list_skill_files, load_skill_folder, read_skill_file
from services.skills.validation import Problem, SkillDocument, check_name

__all__ = ["InvalidSkill", "LoadedSkill", "SkillRegistry", "Snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedSkill:
    """A valid skill and the folder it was read from."""

    document: SkillDocument
    folder: Path


@dataclass(frozen=True)
class InvalidSkill:
    """A folder in the skills directory that is not a valid skill, and why."""

    source: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Snapshot:
    """What the skills folder held at the last scan: valid skills by name, invalid folders."""

    skills: dict[str, LoadedSkill] = field(default_factory=dict)
    invalid: tuple[InvalidSkill, ...] = ()


class SkillRegistry:
    def __init__(
        self,
        skills_dir: Path,
        *,
        rescan_interval: float = 0.5,
        max_file_bytes: int = 1 << 20,
        strict: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.skills_dir = skills_dir
        self.strict = strict
        self._interval = rescan_interval
        # Injected so the throttle can be tested without waiting for it.
        self._clock = clock
        self._max_file_bytes = max_file_bytes
        self._lock = asyncio.Lock()
        self._snapshot = Snapshot()
        self._fingerprint: Hashable = None
        # -inf: the first request always scans.
        self._checked_at = float("-inf")

    def invalidate(self) -> None:
        """Makes the next request look at the disk again, whatever the throttle says (after this
        service itself wrote into the skills folder)."""
        self._checked_at = float("-inf")

    async def snapshot(self) -> Snapshot:
        await self._refresh()
        return self._snapshot

    async def get(self, name: str) -> LoadedSkill:
        _check_requested_name(name)
        snapshot = await self.snapshot()
        skill = snapshot.skills.get(name)
        if skill is not None:
            return skill
        for invalid in snapshot.invalid:
            if invalid.source == name:
                why = "; ".join(f"{p.field}: {p.message}" for p in invalid.problems)
                raise NotFound(f"skill {name!r} is invalid and not loaded ({why})", reason="SKILL_INVALID")
        raise NotFound(f"no skill named {name!r}")

    async def files(self, skill: LoadedSkill) -> list[str]:
        # Listing walks the disk: off the event loop.
        return await asyncio.to_thread(list_skill_files, skill.folder)

    async def read_file(self, name: str, relative_path: str) -> bytes:
        skill = await self.get(name)
        # Reading a file blocks: off the event loop.
        return await asyncio.to_thread(
            read_skill_file, skill.folder, relative_path, max_bytes=self._max_file_bytes
        )

    async def validate_folder(
        self, folder_name: str, *, strict: bool | None = None
    ) -> tuple[list[Problem], list[Problem]]:
        """(problems, warnings) of the folder `folder_name` of the skills directory, even one the
        registry skips as invalid; `strict` None judges as the registry does."""
        if not folder_name or folder_name in (".", "..") or "/" in folder_name or "\x00" in folder_name:
            raise InvalidArgument(f"{folder_name!r} is not a folder name in the skills directory")
        folder = self.skills_dir / folder_name
        judge_strictly = self.strict if strict is None else strict
        # Reading SKILL.md blocks: off the event loop.
        found = await asyncio.to_thread(_validate_existing, folder, judge_strictly)
        if found is None:
            raise NotFound(f"the skills directory has no folder {folder_name!r}")
        return found

    async def _refresh(self) -> None:
        if self._clock() - self._checked_at < self._interval:
            return
        async with self._lock:
            if self._clock() - self._checked_at < self._interval:
                return  # another request refreshed while this one waited for the lock
            # The fingerprint is taken before the scan, so a change during the scan is seen next time.
            fingerprint = await asyncio.to_thread(_fingerprint, self.skills_dir)
            self._checked_at = self._clock()
            if fingerprint == self._fingerprint:
                return
            self._snapshot = await asyncio.to_thread(_scan, self.skills_dir, self.strict)
            self._fingerprint = fingerprint
            log.info(
                "skills folder %s: %d skills, %d invalid",
                self.skills_dir,
                len(self._snapshot.skills),
                len(self._snapshot.invalid),
            )


def _check_requested_name(name: str) -> None:
    if not name:
        raise InvalidArgument("name is required")
    problems = check_name(name)
    if problems:
        raise InvalidArgument(f"{name!r} is not a skill name: {problems[0].message}")


def _validate_existing(folder: Path, strict: bool) -> tuple[list[Problem], list[Problem]] | None:
    if not folder.is_dir():
        return None
    document, problems = load_skill_folder(folder, strict=strict)
    return problems, list(document.warnings) if document is not None else []


def _skill_folders(skills_dir: Path) -> list[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(skills_dir))
    except FileNotFoundError:
        return []
    return sorted(
        (entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name
    )


def _fingerprint(skills_dir: Path) -> Hashable:
    items: list[tuple[object, ...]] = []
    for entry in _skill_folders(skills_dir):
        try:
            info = entry.stat()  # follows links: a linked skill folder counts as a folder
        except OSError:
            items.append((entry.name, "unreadable"))
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue
        try:
            skill_md = os.stat(os.path.join(entry.path, SKILL_FILE))
            skill_key: tuple[int, ...] = (skill_md.st_mtime_ns, skill_md.st_size, skill_md.st_ino)
        except OSError:
            skill_key = ()
        items.append((entry.name, info.st_mtime_ns, info.st_ino, skill_key))
    return (skills_dir.is_dir(), tuple(items))


def _scan(skills_dir: Path, strict: bool) -> Snapshot:
    if not skills_dir.is_dir():
        log.warning("skills folder %s does not exist; no skills loaded", skills_dir)
        return Snapshot()
    skills: dict[str, LoadedSkill] = {}
    invalid: list[InvalidSkill] = []
    for entry in _skill_folders(skills_dir):
        if not entry.is_dir():
            continue
        folder = Path(entry.path)
        document, problems = load_skill_folder(folder, strict=strict)
        if document is None:
            invalid.append(InvalidSkill(source=entry.name, problems=tuple(problems)))
            continue
        if document.warnings:
            log.warning(
                "skill %s loaded with warnings: %s",
                entry.name,
                "; ".join(f"{warning.field}: {warning.message}" for warning in document.warnings),
            )
        skills[document.name] = LoadedSkill(document=document, folder=folder)
    return Snapshot(skills=skills, invalid=tuple(invalid))
