"""The experience log: what each finished task did, kept for reflection to learn skills from.

Checks a record before storing it and answers filtered, paged lists. It never changes or
deletes a stored experience: the log is evidence that proposals point at.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid

from services.common.errors import AlreadyExists, InvalidArgument
from services.common.paging import next_page_token, page_bounds
from services.common.protos import utc_now
from services.skills.models import Experience, ExperienceFilter
from services.skills.store import SkillsStore

__all__ = ["ID_PATTERN", "ExperienceLog"]

# Ids are chosen by the service, or by a caller that wants a retried record stored once.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class ExperienceLog:
    def __init__(self, store: SkillsStore) -> None:
        self._store = store

    async def record(self, experience: Experience) -> Experience:
        """Stores `experience` and returns it with its id and create_time. With a caller-chosen
        id that is already stored, returns the stored record unchanged (a retry)."""
        _check(experience)
        recorded = dataclasses.replace(
            experience, id=experience.id or uuid.uuid4().hex, create_time=utc_now()
        )
        try:
            await self._store.insert_experience(recorded)
        except AlreadyExists:
            # The caller's id is stored already: a retry, or a clash with another task's record.
            stored = await self._store.get_experience(recorded.id)
            if stored is None:
                raise
            return _same_task(stored, experience)
        return recorded

    async def list(
        self, where: ExperienceFilter, page_size: int, page_token: str
    ) -> tuple[list[Experience], str]:
        """A page of experiences, newest first, and the token of the next page ("" at the end)."""
        offset, limit = page_bounds(page_size, page_token)
        rows = await self._store.list_experiences(where, offset, limit)
        return rows, next_page_token(offset, limit, len(rows))


def _same_task(stored: Experience, given: Experience) -> Experience:
    if stored.task_id != given.task_id:
        raise AlreadyExists(f"experience id {given.id!r} is already used by task {stored.task_id!r}")
    return stored


def _check(experience: Experience) -> None:
    if experience.id and not ID_PATTERN.fullmatch(experience.id):
        raise InvalidArgument("experience.id may hold only letters, digits and _ . : - (at most 128)")
    if not experience.task_id:
        raise InvalidArgument("experience.task_id is required")
    if not experience.goal.strip():
        raise InvalidArgument("experience.goal is required")
    if experience.outcome is None:
        raise InvalidArgument("experience.outcome is required (completed, failed or cancelled)")
    for name in ("steps", "duration_seconds", "prompt_tokens", "completion_tokens"):
        if getattr(experience, name) < 0:
            raise InvalidArgument(f"experience.{name} must not be negative")
    if not math.isfinite(experience.duration_seconds):
        raise InvalidArgument("experience.duration_seconds must be a finite number")
    for name in ("tools_used", "skills_used"):
        if any(not item.strip() for item in getattr(experience, name)):
            raise InvalidArgument(f"experience.{name} must not hold empty names")
