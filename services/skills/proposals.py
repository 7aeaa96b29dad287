"""Skill proposals and their review: drafts that rest on experiences and events, kept apart from
the skills folder until a reviewer promotes them.

A draft is validated when it arrives; an invalid one is kept with its problems (INVALID) and
can only be rejected. Each draft is stored as a row and as `<proposals_dir>/<id>/SKILL.md` for a
reviewer to read; that area is never scanned as skills. Every event ref must fall within a
recorded experience of its task. Promotion validates again, records the proposal id and its
evidence in the skill's `metadata`, and writes the skill folder atomically (build a hidden
temporary folder in the skills folder, then rename it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.paging import next_page_token, page_bounds
from services.common.protos import utc_now
from services.skills.folders import MAX_SKILL_MD_BYTES, SKILL_FILE
from services.skills.models import Proposal, ProposalState
from services.skills.registry import SkillRegistry
from services.skills.store import SkillsStore
from services.skills.validation import Problem, declared_name, parse_skill_md, split_front_matter

__all__ = ["ProposalDraft", "ProposalReview", "with_provenance"]


@dataclass(frozen=True)
class ProposalDraft:
    skill_md: str
    experience_ids: tuple[str, ...] = ()
    event_refs: tuple[str, ...] = ()
    rationale: str = ""


class ProposalReview:
    def __init__(self, store: SkillsStore, registry: SkillRegistry, proposals_dir: Path) -> None:
        self._store = store
        self._registry = registry
        self._proposals_dir = proposals_dir
        # One decision at a time, so two reviewers cannot promote the same draft twice.
        self._decide_lock = asyncio.Lock()

    async def propose(self, draft: ProposalDraft) -> Proposal:
        """Stores `draft` as PENDING when it is a valid SKILL.md, INVALID with its problems if not."""
        if not draft.skill_md.strip():
            raise InvalidArgument("skill_md is required")
        size = len(draft.skill_md.encode())
        if size > MAX_SKILL_MD_BYTES:
            raise InvalidArgument(f"skill_md is {size} bytes; the most is {MAX_SKILL_MD_BYTES}")
        _check_event_refs(draft.event_refs)
        missing = await self._store.missing_experiences(draft.experience_ids)
        if missing:
            raise InvalidArgument("unknown experience ids: " + ", ".join(missing))
        await self._check_refs_exist(draft.event_refs)
        # No folder yet: the skill's folder will be named after the skill, so that rule holds.
        # Strict: a draft written for DuckLM has no reason to stray from the spec.
        document, problems = parse_skill_md(draft.skill_md, folder_name=None, strict=True)
        proposal = Proposal(
            id=uuid.uuid4().hex,
            name=document.name if document else declared_name(draft.skill_md),
            skill_md=draft.skill_md,
            state=ProposalState.PENDING if document else ProposalState.INVALID,
            problems=tuple(problems),
            experience_ids=tuple(dict.fromkeys(draft.experience_ids)),
            event_refs=tuple(dict.fromkeys(draft.event_refs)),
            rationale=draft.rationale,
            create_time=utc_now(),
        )
        # Writing the reviewer's copy blocks: off the event loop.
        await asyncio.to_thread(_write_draft, self._proposals_dir / proposal.id, proposal.skill_md)
        await self._store.insert_proposal(proposal)
        return proposal

    async def _check_refs_exist(self, refs: Sequence[str]) -> None:
        """Each "task_id:seq" must name a task with a recorded experience and a seq inside it."""
        for ref in dict.fromkeys(refs):
            task_id, _, seq = ref.rpartition(":")
            last = await self._store.last_event_seq(task_id)
            if last is None:
                raise InvalidArgument(f"event ref {ref!r}: no experience of task {task_id!r} is recorded")
            if int(seq) < 1 or (last and int(seq) > last):
                raise InvalidArgument(
                    f"event ref {ref!r}: task {task_id!r} has no event {seq} (its experiences end at {last})"
                )

    async def get(self, proposal_id: str) -> Proposal:
        if not proposal_id:
            raise InvalidArgument("proposal_id is required")
        proposal = await self._store.get_proposal(proposal_id)
        if proposal is None:
            raise NotFound(f"no proposal {proposal_id!r}")
        return proposal

    async def list(
        self, state: ProposalState | None, page_size: int, page_token: str
    ) -> tuple[list[Proposal], str]:
        offset, limit = page_bounds(page_size, page_token)
        rows = await self._store.list_proposals(state, offset, limit)
        return rows, next_page_token(offset, limit, len(rows))

    async def promote(self, proposal_id: str, decided_by: str) -> Proposal:
        """Validates the draft again and installs it as a skill; FAILED_PRECONDITION unless it is
        pending and valid, ALREADY_EXISTS if the skills folder already has that name."""
        if not decided_by.strip():
            raise InvalidArgument("decided_by is required")
        async with self._decide_lock:
            proposal = await self.get(proposal_id)
            _require_pending(proposal)
            document, problems = parse_skill_md(proposal.skill_md, folder_name=None, strict=True)
            if document is None:
                # The rules changed since it arrived: record why it can no longer be promoted.
                await self._store.save_decision(
                    dataclasses.replace(proposal, state=ProposalState.INVALID, problems=tuple(problems)),
                    expected=[ProposalState.PENDING],
                )
                raise FailedPrecondition(
                    f"proposal {proposal_id} is not a valid skill: {_describe(problems)}",
                    reason="PROPOSAL_INVALID",
                )
            skills_dir = self._registry.skills_dir
            installed = with_provenance(proposal.skill_md, proposal)
            # Installing writes files: off the event loop.
            target = await asyncio.to_thread(_install_skill, skills_dir, document.name, installed)
            promoted = dataclasses.replace(
                proposal, state=ProposalState.PROMOTED, decided_by=decided_by, decide_time=utc_now()
            )
            try:
                saved = await self._store.save_decision(promoted, expected=[ProposalState.PENDING])
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, target, True)
                raise
            if not saved:
                await asyncio.to_thread(shutil.rmtree, target, True)
                raise FailedPrecondition(
                    f"proposal {proposal_id} was decided meanwhile", reason="PROPOSAL_DECIDED"
                )
            self._registry.invalidate()
            return promoted

    async def reject(self, proposal_id: str, decided_by: str, reason: str) -> Proposal:
        """Records who rejected a pending or invalid proposal and why."""
        if not decided_by.strip():
            raise InvalidArgument("decided_by is required")
        if not reason.strip():
            raise InvalidArgument("reason is required: say why the proposal is rejected")
        async with self._decide_lock:
            proposal = await self.get(proposal_id)
            if proposal.state not in (ProposalState.PENDING, ProposalState.INVALID):
                raise FailedPrecondition(
                    f"proposal {proposal_id} is already {proposal.state.value}", reason="PROPOSAL_DECIDED"
                )
            rejected = dataclasses.replace(
                proposal,
                state=ProposalState.REJECTED,
                decided_by=decided_by,
                reason=reason,
                decide_time=utc_now(),
            )
            expected = [ProposalState.PENDING, ProposalState.INVALID]
            if not await self._store.save_decision(rejected, expected=expected):
                raise FailedPrecondition(
                    f"proposal {proposal_id} was decided meanwhile", reason="PROPOSAL_DECIDED"
                )
            return rejected


# Metadata keys a promoted skill carries back to its review record and evidence.
PROPOSAL_KEY = "ducklm-proposal-id"
EVIDENCE_KEY = "ducklm-evidence"
EXPERIENCES_KEY = "ducklm-experiences"
# Evidence kept in metadata; the proposal record holds all of it.
EVIDENCE_REFS_KEPT = 50


def with_provenance(skill_md: str, proposal: Proposal) -> str:
    """`skill_md` with the proposal's id, event refs and experience ids added to its `metadata`
    (space-separated, as metadata values are strings); the body is kept byte for byte."""
    split = split_front_matter(skill_md)
    assert split is not None, "only a validated SKILL.md is promoted"
    front, body = split
    data = yaml.safe_load(front)  # validated already: a mapping
    metadata = dict(data.get("metadata") or {})
    metadata[PROPOSAL_KEY] = proposal.id
    if proposal.event_refs:
        metadata[EVIDENCE_KEY] = " ".join(proposal.event_refs[:EVIDENCE_REFS_KEPT])
    if proposal.experience_ids:
        metadata[EXPERIENCES_KEY] = " ".join(proposal.experience_ids)
    data["metadata"] = metadata
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000) + "---\n\n" + body


def _require_pending(proposal: Proposal) -> None:
    if proposal.state is ProposalState.INVALID:
        raise FailedPrecondition(
            f"proposal {proposal.id} is invalid and cannot be promoted: {_describe(proposal.problems)}",
            reason="PROPOSAL_INVALID",
        )
    if proposal.state is not ProposalState.PENDING:
        raise FailedPrecondition(
            f"proposal {proposal.id} is already {proposal.state.value}", reason="PROPOSAL_DECIDED"
        )


def _describe(problems: Sequence[Problem]) -> str:
    return "; ".join(f"{problem.field}: {problem.message}" for problem in problems)


def _check_event_refs(refs: Sequence[str]) -> None:
    for ref in refs:
        task_id, _, seq = ref.rpartition(":")
        if not task_id or not seq.isdigit():
            raise InvalidArgument(f"event ref {ref!r} must be 'task_id:seq' (seq a whole number)")


def _write_draft(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_synced(folder / SKILL_FILE, text)


def _install_skill(skills_dir: Path, name: str, text: str) -> Path:
    """Creates `skills_dir/name/SKILL.md` all at once: readers see no folder or the whole skill."""
    skills_dir.mkdir(parents=True, exist_ok=True)
    target = skills_dir / name
    if os.path.lexists(target):
        raise AlreadyExists(f"the skills folder already has {name!r}", reason="SKILL_EXISTS")
    # Hidden (leading "."), so the registry never scans the half-built folder.
    temp = Path(tempfile.mkdtemp(prefix=f".promote-{name}-", dir=skills_dir))
    try:
        temp.chmod(0o755)
        _write_synced(temp / SKILL_FILE, text)
        try:
            # On Linux, rename replaces only an empty folder; lexists above catches the rest.
            os.rename(temp, target)
        except OSError as exc:
            raise AlreadyExists(f"the skills folder already has {name!r}", reason="SKILL_EXISTS") from exc
        _fsync_dir(skills_dir)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target


def _write_synced(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
