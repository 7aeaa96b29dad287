"""The skills service's SQLite access layer: the experience log and the proposal records.

The only module that writes SQL. Lists (tools used, problems, evidence) are stored as JSON text;
times as ISO-8601 UTC. Rows come back newest first. Skills themselves are files, not rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from services.common.database import open_database
from services.common.errors import AlreadyExists
from services.skills.models import Experience, ExperienceFilter, Outcome, Proposal, ProposalState
from services.skills.validation import Problem

__all__ = ["SkillsStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiences (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    goal TEXT NOT NULL,
    outcome TEXT NOT NULL,
    steps INTEGER NOT NULL,
    tools_used TEXT NOT NULL,
    errors TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    final_answer TEXT NOT NULL,
    skills_used TEXT NOT NULL,
    create_time TEXT NOT NULL,
    last_event_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS experiences_by_task ON experiences (task_id);
CREATE INDEX IF NOT EXISTS experiences_by_outcome ON experiences (outcome);

CREATE TABLE IF NOT EXISTS proposals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    skill_md TEXT NOT NULL,
    state TEXT NOT NULL,
    problems TEXT NOT NULL,
    experience_ids TEXT NOT NULL,
    event_refs TEXT NOT NULL,
    rationale TEXT NOT NULL,
    create_time TEXT NOT NULL,
    decide_time TEXT,
    decided_by TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS proposals_by_state ON proposals (state);
"""


class SkillsStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path | str) -> SkillsStore:
        db = await open_database(path, SCHEMA)
        # Databases made before experiences kept their last event's seq gain the column.
        async with db.execute("PRAGMA table_info(experiences)") as cursor:
            columns = {row[1] for row in await cursor.fetchall()}
        if "last_event_seq" not in columns:
            await db.execute("ALTER TABLE experiences ADD COLUMN last_event_seq INTEGER NOT NULL DEFAULT 0")
            await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    # --- experiences ---

    async def insert_experience(self, experience: Experience) -> None:
        """Stores `experience`; AlreadyExists if its id is taken."""
        outcome, created = experience.outcome, experience.create_time
        if outcome is None or created is None:
            raise ValueError("an experience is stored only with its outcome and create_time")
        cursor = await self._db.execute(
            "INSERT INTO experiences (id, task_id, goal, outcome, steps, tools_used, errors,"
            " duration_seconds, prompt_tokens, completion_tokens, final_answer, skills_used, create_time,"
            " last_event_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                experience.id,
                experience.task_id,
                experience.goal,
                outcome.value,
                experience.steps,
                json.dumps(list(experience.tools_used)),
                json.dumps(list(experience.errors)),
                experience.duration_seconds,
                experience.prompt_tokens,
                experience.completion_tokens,
                experience.final_answer,
                json.dumps(list(experience.skills_used)),
                created.isoformat(),
                experience.last_event_seq,
            ),
        )
        await self._db.commit()
        if cursor.rowcount != 1:
            raise AlreadyExists(f"an experience with id {experience.id!r} exists")

    async def get_experience(self, experience_id: str) -> Experience | None:
        async with self._db.execute("SELECT * FROM experiences WHERE id = ?", (experience_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _experience(row)

    async def missing_experiences(self, ids: Sequence[str]) -> list[str]:
        """The ids among `ids` that no stored experience has."""
        missing = []
        for experience_id in dict.fromkeys(ids):
            async with self._db.execute("SELECT 1 FROM experiences WHERE id = ?", (experience_id,)) as cursor:
                if await cursor.fetchone() is None:
                    missing.append(experience_id)
        return missing

    async def last_event_seq(self, task_id: str) -> int | None:
        """The highest event seq any experience of `task_id` covers (0 when none recorded it),
        or None when the task has no experience."""
        async with self._db.execute(
            "SELECT COUNT(*), COALESCE(MAX(last_event_seq), 0) FROM experiences WHERE task_id = ?", (task_id,)
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return None if row[0] == 0 else int(row[1])

    async def list_experiences(self, where: ExperienceFilter, offset: int, limit: int) -> list[Experience]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.outcome is not None:
            clauses.append("outcome = ?")
            params.append(where.outcome.value)
        if where.task_id:
            clauses.append("task_id = ?")
            params.append(where.task_id)
        if where.tool:
            clauses.append("EXISTS (SELECT 1 FROM json_each(experiences.tools_used) AS t WHERE t.value = ?)")
            params.append(where.tool)
        sql = "SELECT * FROM experiences"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        async with self._db.execute(sql, (*params, limit, offset)) as cursor:
            rows = await cursor.fetchall()
        return [_experience(row) for row in rows]

    # --- proposals ---

    async def insert_proposal(self, proposal: Proposal) -> None:
        await self._db.execute(
            "INSERT INTO proposals (id, name, skill_md, state, problems, experience_ids, event_refs,"
            " rationale, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                proposal.id,
                proposal.name,
                proposal.skill_md,
                proposal.state.value,
                _problems_json(proposal.problems),
                json.dumps(list(proposal.experience_ids)),
                json.dumps(list(proposal.event_refs)),
                proposal.rationale,
                proposal.create_time.isoformat(),
            ),
        )
        await self._db.commit()

    async def get_proposal(self, proposal_id: str) -> Proposal | None:
        async with self._db.execute("SELECT * FROM proposals WHERE id = ?", (proposal_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _proposal(row)

    async def list_proposals(self, state: ProposalState | None, offset: int, limit: int) -> list[Proposal]:
        sql = "SELECT * FROM proposals"
        params: list[Any] = []
        if state is not None:
            sql += " WHERE state = ?"
            params.append(state.value)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        async with self._db.execute(sql, (*params, limit, offset)) as cursor:
            rows = await cursor.fetchall()
        return [_proposal(row) for row in rows]

    async def save_decision(self, proposal: Proposal, *, expected: Sequence[ProposalState]) -> bool:
        """Stores `proposal`'s state, problems and decision if its stored state is one of
        `expected`; False when it was not (someone decided first)."""
        marks = ", ".join("?" for _ in expected)
        cursor = await self._db.execute(
            f"UPDATE proposals SET state = ?, problems = ?, decide_time = ?, decided_by = ?, reason = ?"
            f" WHERE id = ? AND state IN ({marks})",
            (
                proposal.state.value,
                _problems_json(proposal.problems),
                proposal.decide_time.isoformat() if proposal.decide_time else None,
                proposal.decided_by,
                proposal.reason,
                proposal.id,
                *(state.value for state in expected),
            ),
        )
        await self._db.commit()
        return cursor.rowcount == 1


def _problems_json(problems: Sequence[Problem]) -> str:
    return json.dumps([[problem.field, problem.message] for problem in problems])


def _experience(row: aiosqlite.Row) -> Experience:
    return Experience(
        id=row["id"],
        task_id=row["task_id"],
        goal=row["goal"],
        outcome=Outcome(row["outcome"]),
        steps=row["steps"],
        tools_used=tuple(json.loads(row["tools_used"])),
        errors=tuple(json.loads(row["errors"])),
        duration_seconds=row["duration_seconds"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        final_answer=row["final_answer"],
        skills_used=tuple(json.loads(row["skills_used"])),
        create_time=datetime.fromisoformat(row["create_time"]),
        last_event_seq=row["last_event_seq"],
    )


def _proposal(row: aiosqlite.Row) -> Proposal:
    return Proposal(
        id=row["id"],
        name=row["name"],
        skill_md=row["skill_md"],
        state=ProposalState(row["state"]),
        problems=tuple(Problem(field, message) for field, message in json.loads(row["problems"])),
        experience_ids=tuple(json.loads(row["experience_ids"])),
        event_refs=tuple(json.loads(row["event_refs"])),
        rationale=row["rationale"],
        create_time=datetime.fromisoformat(row["create_time"]),
        decide_time=datetime.fromisoformat(row["decide_time"]) if row["decide_time"] else None,
        decided_by=row["decided_by"],
        reason=row["reason"],
    )
